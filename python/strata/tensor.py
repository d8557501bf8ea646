"""``strata.Tensor``: what calling a model or a loss returns in Python. TensorFlow returns an eager
tensor there, and programs written for it call ``.numpy()`` on the result
(``model(x_train[:1]).numpy()``); strata's results are NumPy arrays that also answer ``.numpy()``,
so those programs run unchanged and everything NumPy offers works on them."""

import numpy as np


class Tensor(np.ndarray):
    """A NumPy array with TensorFlow's ``numpy()`` accessor (it returns a plain ``ndarray``)."""

    def numpy(self):
        """The values as a plain NumPy array (a scalar tensor gives a NumPy scalar, as TensorFlow)."""
        array = np.asarray(self).view(np.ndarray)
        return array[()] if array.ndim == 0 else array

    def __repr__(self):
        return f"<strata.Tensor: shape={self.shape}, dtype={self.dtype}, numpy=\n{np.asarray(self).view(np.ndarray)!r}>"


def as_tensor(value, dtype=None):
    """``value`` (a number, list or array) as a :class:`Tensor`, float32 unless it holds integers."""
    array = np.asarray(value, dtype=dtype)
    if dtype is None and array.dtype == np.float64:
        array = array.astype(np.float32)
    return array.view(Tensor)


def convert_to_tensor(value, dtype=None, **kwargs):
    """TensorFlow's ``tf.convert_to_tensor`` / ``tf.constant``: a :class:`Tensor` of ``value``."""
    return as_tensor(value, dtype)


constant = convert_to_tensor
