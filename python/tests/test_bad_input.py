"""Bad input: converted where Keras converts, refused with the right exception where it refuses;
nothing panics across the boundary."""

import numpy as np
import pytest

import strata.keras as keras
from strata import _strata
from strata.keras import layers


def regression():
    model = keras.Sequential([layers.Dense(2, input_shape=(3,))])
    model.compile("sgd", "mse")
    return model


def test_integer_and_boolean_arrays_are_converted():
    model = regression()
    model.fit(np.ones((8, 3), dtype="int64"), np.zeros((8, 2), dtype=bool), epochs=1, verbose=0)
    assert model.predict(np.ones((2, 3), dtype="uint8"), verbose=0).dtype == np.float32
    assert model.predict([[1, 2, 3]], verbose=0).shape == (1, 2)


def test_a_non_contiguous_array_is_copied_not_misread():
    model = regression()
    wide = np.random.default_rng(0).normal(size=(10, 6)).astype("float32")
    strided = wide[:, ::2]
    assert not strided.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(model.predict(strided, verbose=0), model.predict(strided.copy(), verbose=0))
    fortran = np.asfortranarray(wide[:, :3])
    np.testing.assert_array_equal(model.predict(fortran, verbose=0), model.predict(wide[:, :3].copy(), verbose=0))


def test_strings_and_objects_are_type_errors():
    model = regression()
    with pytest.raises(TypeError, match="dtype"):
        model.predict(np.array([["a", "b", "c"]]), verbose=0)
    with pytest.raises(TypeError, match="dtype object"):
        model.predict(np.array([[object(), 1, 2]], dtype=object), verbose=0)
    with pytest.raises(TypeError, match="epochs"):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs="5", verbose=0)
    with pytest.raises(TypeError):
        layers.Dense(object())._entry()


def test_wrong_shapes_are_value_errors_with_strata_message():
    model = regression()
    with pytest.raises(ValueError, match="shape"):
        model.predict(np.ones((4, 5), "float32"), verbose=0)
    with pytest.raises(ValueError):
        model.fit(np.ones((4, 3)), np.ones((5, 2)), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="units"):
        keras.Sequential([layers.Dense(-1, input_shape=(3,))]).compile("sgd", "mse")


def test_unknown_arguments_and_missing_files():
    with pytest.raises(ValueError, match="unitz"):
        keras.Sequential([layers.Dense(3, unitz=4, input_shape=(2,))]).compile("sgd", "mse")
    with pytest.raises(OSError):
        keras.models.load_model("/nonexistent/model.safetensors")


def test_what_strata_lacks_is_not_implemented_naming_it():
    model = regression()
    with pytest.raises(NotImplementedError, match="f1_score"):
        model.compile("sgd", "mse", metrics=["f1_score"])
    with pytest.raises(NotImplementedError, match="Nadam"):
        keras.optimizers.Nadam()
    with pytest.raises(NotImplementedError, match="sample_weight"):
        model.fit(np.ones((4, 3)), np.ones((4, 2)), sample_weight=np.ones(4), verbose=0)
    with pytest.raises(NotImplementedError, match="custom loss"):
        model.compile("sgd", lambda y_true, y_pred: y_pred)
    with pytest.raises(NotImplementedError, match="subclassing"):
        class Custom(keras.Model):
            def call(self, x):
                return x
        Custom()


def test_fit_before_compile_is_refused():
    model = keras.Sequential([layers.Dense(1, input_shape=(2,))])
    with pytest.raises(ValueError, match="compile"):
        model.fit(np.ones((2, 2)), np.ones((2, 1)), verbose=0)


def test_a_rust_panic_becomes_a_python_exception():
    with pytest.raises(RuntimeError, match="deliberate panic"):
        _strata._panic_for_test()
    # The interpreter and the engine still work.
    assert regression().predict(np.ones((1, 3)), verbose=0).shape == (1, 2)
