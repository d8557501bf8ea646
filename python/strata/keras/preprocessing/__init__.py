"""``keras.preprocessing``: Keras 2's spelling of the sequence utilities (``keras.utils`` has them too)."""

from . import sequence

__all__ = ["sequence"]
