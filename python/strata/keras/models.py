"""``keras.Model``, ``keras.Sequential``, ``keras.models.load_model``: the Python face of a
strata model. The model's layers are kept as Keras configs; the first time weights are needed
(``compile``, ``build``, ``fit``, ...) strata's engine builds the model from them, and from
then on the engine holds the model: training, evaluation and prediction run in Rust with the
GIL released."""

import json
import os
import time

import numpy as np

from .. import _strata
from . import _config, callbacks as callbacks_module, losses as losses_module, metrics as metrics_module
from . import optimizers as optimizers_module
from ..tensor import as_tensor
from ._config import as_float32, unique_name
from .layers import InputLayer, KerasTensor, Lambda, Layer, WeightLists


class Model(WeightLists):
    """Keras's functional ``Model(inputs, outputs)``."""

    #: A model can be called as a layer (see ``KerasTensor._reference``).
    _is_model = True

    def __init__(self, inputs=None, outputs=None, name=None, **kwargs):
        frozen = kwargs.pop("trainable", True) is False
        if kwargs:
            raise NotImplementedError(f"keras.Model: arguments strata does not support: {', '.join(kwargs)}")
        self._engine = None
        self.stop_training = False
        self.optimizer = None
        self.history = None
        self._metric_keys = {}
        if type(self) is Model or inputs is not None:
            if inputs is None or outputs is None:
                raise NotImplementedError(
                    "subclassing keras.Model (a call() method) is not supported by strata: "
                    "build the model with keras.Input and layer calls, or with keras.Sequential"
                )
            self.name = name or unique_name("functional")
            self._init_graph(inputs, outputs)
            if frozen:
                self.trainable = False
        elif type(self) is not Sequential:
            raise NotImplementedError(
                f"subclassing keras.Model ({type(self).__name__}) is not supported by strata: "
                "build the model with keras.Input and layer calls, or with keras.Sequential"
            )

    # The graph -------------------------------------------------------------------------------

    def _init_graph(self, inputs, outputs):
        # Inputs and outputs given as dicts (keras.io's multi-input, multi-output model) are
        # kept in the dicts' order; their keys name them in `fit`, `compile` and `predict`.
        self._input_dict_keys = list(inputs) if isinstance(inputs, dict) else None
        self._output_dict_keys = list(outputs) if isinstance(outputs, dict) else None
        if isinstance(inputs, dict):
            inputs = list(inputs.values())
        if isinstance(outputs, dict):
            outputs = list(outputs.values())
        self._multi_input = isinstance(inputs, (list, tuple))
        self._multi_output = isinstance(outputs, (list, tuple))
        self._inputs = list(inputs) if self._multi_input else [inputs]
        self._outputs = list(outputs) if self._multi_output else [outputs]
        for t in self._inputs + self._outputs:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"keras.Model: inputs and outputs must be symbolic tensors (keras.Input), got {t!r}")
        for t in self._inputs:
            if not isinstance(t._layer, InputLayer):
                raise ValueError(f"keras.Model: input {t!r} is not made by keras.Input")
        # Every layer the outputs depend on, each after the layers it reads.
        order, seen, names = [], set(), {}

        def visit(layer):
            if id(layer) in seen:
                return
            if layer.name in names:
                raise ValueError(f"keras.Model: two layers are named '{layer.name}'")
            seen.add(id(layer))
            names[layer.name] = layer
            for node in getattr(layer, "_inbound_nodes", []):
                for tensor in node:
                    visit(tensor._layer)
            order.append(layer)

        for t in self._outputs:
            visit(t._layer)
        keras_order = _keras_layer_order(self._inputs, self._outputs)
        if {id(layer) for layer in keras_order} == seen:
            order = keras_order
        self._all_layers = order
        self._weight_sources = []
        # Layers another model holds already (``keras.Model(model.input, layer.output)``, the
        # feature-extractor recipe): Keras shares their weights between the models. strata's
        # models each hold their weights, so these layers stay the other model's, and their
        # weights are copied from it when this model runs and back after it trains.
        self._shared = {}
        for layer in order:
            if isinstance(layer, Model):
                self._take_nested_layers(layer)
            elif isinstance(getattr(layer, "_model", None), Model) and not isinstance(layer, InputLayer):
                self._shared[layer.name] = layer._model
            else:
                layer._model = self

    def _description(self):
        entries = []
        for layer in self._all_layers:
            entry = layer._entry()
            entry["name"] = layer.name
            entry["inbound_nodes"] = [[t._reference() for t in node] for node in layer._inbound_nodes]
            entries.append(entry)
        return {
            "class_name": "Functional",
            "config": {
                "name": self.name,
                "layers": entries,
                "input_layers": [[t._layer.name, t._node_index, t._tensor_index] for t in self._inputs],
                "output_layers": [[t._layer.name, t._node_index, t._tensor_index] for t in self._outputs],
            },
        }

    @property
    def layers(self):
        """The layers in Keras 3's order: a functional model lists its InputLayers first (as
        Keras 3 does), a Sequential model leaves them out."""
        return list(self._all_layers)

    def _layers_with_state(self):
        """The layers that have weights or a ``trainable`` of their own (InputLayers left out)."""
        return [layer for layer in self.layers if not isinstance(layer, InputLayer)]

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input(self):
        """Keras's ``model.input``: the symbolic input (a list for several)."""
        return self._inputs[0] if not self._multi_input else list(self._inputs)

    @property
    def output(self):
        """Keras's ``model.output``: the symbolic output (a list for several)."""
        return self._outputs[0] if not self._multi_output else list(self._outputs)

    @property
    def input_shape(self):
        """Keras's ``input_shape``: ``(None, ...)`` (a list of them for several inputs)."""
        shapes = self._known_shapes("input", lambda engine: engine.input_shapes())
        return shapes if self._input_count() > 1 else shapes[0]

    @property
    def output_shape(self):
        """Keras's ``output_shape``: ``(None, ...)`` (a list of them for several outputs)."""
        shapes = self._known_shapes("output", lambda engine: engine.output_shapes())
        return shapes if len(shapes) > 1 else shapes[0]

    def _known_shapes(self, what, read):
        engine = self._make_engine()
        shapes = read(engine) if engine.input_shapes() else []
        if not shapes and what == "input" and not isinstance(self, (Sequential, _Loaded)):
            shapes = [tensor._layer._config["shape"] for tensor in self._inputs]
        if not shapes:
            raise AttributeError(f"{type(self).__name__} model '{self.name}' has no defined {what} shape yet.")
        return [(None, *shape) for shape in shapes]

    @property
    def metrics_names(self):
        """Keras 3's ``metrics_names``: ``[]`` before ``compile``, then ``["loss"]``, and
        ``["loss", "compile_metrics"]`` when compile was given metrics (Keras 3 names its
        metrics' container so; the metrics' own names are the keys of ``evaluate(...,
        return_dict=True)`` and of ``history``)."""
        if self.optimizer is None:
            return []
        return ["loss", "compile_metrics"] if self._metric_keys else ["loss"]

    def get_layer(self, name=None, index=None):
        layers = self.layers
        if index is not None:
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}")

    # The engine ------------------------------------------------------------------------------

    def _engine_or_none(self):
        return self._engine

    def _synced_engine(self):
        """The engine, with the weights of layers shared with another model copied from it."""
        engine = self._make_engine()
        shared = getattr(self, "_shared", {})
        if shared and engine.input_shapes() and not getattr(self, "_syncing", False):
            self._syncing = True
            try:
                for name, owner in shared.items():
                    weights = list(owner._make_engine().get_weights(name))
                    if weights:
                        engine.set_weights(weights, name)
            finally:
                self._syncing = False
        return engine

    def _sync_back(self):
        """After this model changed the weights of layers it shares: the models holding them
        get them too."""
        for name, owner in getattr(self, "_shared", {}).items():
            weights = list(self._engine.get_weights(name))
            if weights:
                owner._make_engine().set_weights(weights, name)

    def _make_engine(self):
        """The engine, built from the layers' configs on first use."""
        if self._engine is None:
            # Statistics adapted before the model was made become weights (mean, variance, count,
            # as Keras's) when the model is built at once; else they stay settings.
            shapes = self._declared_shapes()
            adapted = [layer for layer in self._all_layers
                       if shapes is not None and getattr(layer, "_adapted", None) is not None]
            for layer in adapted:
                layer._config.pop("mean", None)
                layer._config.pop("variance", None)
            engine = _strata.Engine.from_description(json.dumps(self._description()))
            seed = _config.global_seed()
            if seed is not None:
                engine.seed(seed)
            self._engine = engine
            for layer in self._all_layers:
                if layer.name not in getattr(self, "_shared", {}):
                    layer._model = self
            if shapes is not None:
                # Keras builds a model whose input shapes are known at once (weights exist
                # before compile: count_params, get_weights).
                engine.build(shapes)
                if getattr(self, "_weight_sources", None):
                    self._copy_nested_weights(engine)
                for layer in adapted:
                    current = list(engine.get_weights(layer.name))
                    engine.set_weights([np.asarray(value, np.float32).reshape(weight.shape)
                                        for value, weight in zip(layer._adapted, current)], layer.name)
                    layer._adapted = None
        return self._engine

    def _declared_shapes(self):
        shapes = []
        for tensor in self._inputs:
            shape = tensor._layer._config.get("shape")
            if shape is None or None in shape:
                return None
            shapes.append([int(d) for d in shape])
        return shapes

    def _input_count(self):
        return len(self._inputs)

    def _input_keys(self):
        """The names a dict of inputs gives each input by, in order: the keys of the dict the
        model was made with, else the names of the `keras.Input` layers (as Keras matches them)."""
        keys = getattr(self, "_input_dict_keys", None)
        return keys or [getattr(getattr(t, "_layer", None), "name", None) for t in getattr(self, "_inputs", [])]

    def _output_keys(self):
        """The names a dict of targets, losses or metrics gives each output by, in order: the
        keys of the dict the model was made with, else the names of the output layers."""
        keys = getattr(self, "_output_dict_keys", None)
        return keys or [getattr(getattr(t, "_layer", None), "name", None) for t in getattr(self, "_outputs", [])]

    def _per_output(self, values, what, default=None):
        """A dict keyed by output name as a list in output order (`default` where a key is
        missing; a missing key is an error without one); anything else as it is."""
        if not isinstance(values, dict):
            return values
        keys = self._output_keys()
        unknown = [k for k in values if k not in keys]
        if unknown:
            raise ValueError(f"{what}: no output is named {', '.join(map(repr, unknown))}; "
                             f"the outputs are {', '.join(map(repr, keys))}")
        missing = [k for k in keys if k not in values]
        if missing and default is None:
            raise ValueError(f"{what}: nothing given for output {', '.join(map(repr, missing))}")
        return [values.get(k, default) for k in keys]

    def _output_count(self):
        return max(1, len(self._outputs))

    def build(self, input_shape=None):
        """Builds the weights for ``input_shape`` (the batch dimension first, as Keras)."""
        engine = self._make_engine()
        if input_shape is None:
            return
        shapes = input_shape if self._input_count() > 1 else [input_shape]
        engine.build([[int(d) for d in list(shape)[1:]] for shape in shapes])
        if getattr(self, "_weight_sources", None):
            self._copy_nested_weights(engine)

    @property
    def built(self):
        return self._engine is not None and bool(self._engine.input_shapes())

    # Compile ---------------------------------------------------------------------------------

    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True, **kwargs):
        """Keras's ``compile``: an optimizer (name or object), a loss (name, function or object;
        one per output as a list), ``metrics`` (accuracy in its Keras spellings)."""
        if kwargs:
            raise NotImplementedError(f"compile: arguments strata does not support: {', '.join(kwargs)}")
        if weighted_metrics:
            raise NotImplementedError("compile: weighted_metrics")
        engine = self._make_engine()
        optimizer = optimizers_module.get(optimizer)
        settings = {"optimizer": optimizer._entry()}
        loss = self._per_output(loss, "compile: loss")
        loss_weights = self._per_output(loss_weights, "compile: loss_weights", default=1.0)
        if isinstance(metrics, dict):
            metrics = [m if isinstance(m, (list, tuple)) else [m] for m in self._per_output(metrics, "compile: metrics",
                                                                                      default=[])]
        if loss is not None:
            losses = loss if isinstance(loss, (list, tuple)) else [loss]
            names, logits, smoothing = zip(*(losses_module.resolve(item) for item in losses))
            settings["loss"] = list(names) if isinstance(loss, (list, tuple)) else names[0]
            settings["from_logits"] = list(logits) if isinstance(loss, (list, tuple)) else logits[0]
            if any(smoothing):
                settings["label_smoothing"] = list(smoothing) if isinstance(loss, (list, tuple)) else smoothing[0]
        if loss_weights is not None:
            settings["loss_weights"] = [float(w) for w in loss_weights]
        metric_keys = {}
        self._metric_sequence = []
        settings["metrics"] = []
        if metrics:
            per_output = isinstance(metrics, (list, tuple)) and metrics and all(
                isinstance(m, (list, tuple)) for m in metrics)
            lists = metrics if per_output else [metrics]
            resolved = [[metrics_module.resolve(m) for m in (lst if isinstance(lst, (list, tuple)) else [lst])]
                        for lst in lists]
            settings["metrics"] = [[name for name, _ in lst] for lst in resolved] if per_output \
                else [name for name, _ in resolved[0]]
            # Every accuracy strata computes is logged as "accuracy"; several requested (as
            # "accuracy" and CategoricalAccuracy(name="cat_acc")) are each kept under its name.
            metric_keys = {}
            for lst in resolved:
                metrics_module.check_accuracies([name for name, _ in lst], settings.get("loss"))
                for name, shown in lst:
                    names = metric_keys.setdefault(metrics_module.logged_key(name), [])
                    if shown not in names:
                        names.append(shown)
            self._metric_sequence = [(metrics_module.logged_key(name), shown) for lst in resolved for name, shown in lst]
        self._compile_settings = json.dumps({"layers": [], "compile": settings})
        engine.compile(self._compile_settings)
        self._metric_keys = metric_keys
        optimizer._model = self
        self.optimizer = optimizer
        self.compiled_loss = loss

    # Arrays ----------------------------------------------------------------------------------

    def _arrays(self, data, what, count, names=None):
        if data is None:
            raise ValueError(f"{what} is missing: strata trains on NumPy arrays")
        if isinstance(data, dict):
            # By name, as Keras matches them: `names()` names the inputs (or outputs) in order.
            keys = names() if names else []
            unknown = [k for k in data if k not in keys]
            missing = [k for k in keys if k not in data]
            if unknown or missing or len(keys) != count:
                raise ValueError(
                    f"{what} given as a dict with keys {', '.join(map(repr, data))}: the model's are "
                    f"{', '.join(map(repr, keys)) or 'not named'}")
            data = [data[k] for k in keys]
            if count == 1:
                data = data[0]
        if _is_dataset(data):
            raise NotImplementedError(
                f"{what}: tf.data datasets, generators and PyDataset are not supported by strata; pass NumPy arrays")
        if count > 1:
            if not isinstance(data, (list, tuple)) or len(data) != count:
                raise ValueError(f"{what}: the model has {count} of them; give a list of {count} arrays")
            return [as_float32(d, f"{what}[{i}]") for i, d in enumerate(data)]
        if isinstance(data, (list, tuple)) and len(data) == 1 and hasattr(data[0], "shape"):
            data = data[0]
        return [as_float32(data, what)]

    def _output_count(self):
        return max(1, len(self._make_engine().output_names()))

    # Training --------------------------------------------------------------------------------

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1, **kwargs):
        """Keras's ``fit`` on NumPy arrays; returns a ``History``."""
        unsupported = [name for name, value in [
            ("class_weight", class_weight), ("sample_weight", sample_weight), ("steps_per_epoch", steps_per_epoch),
            ("validation_steps", validation_steps), ("validation_batch_size", validation_batch_size),
        ] if value is not None] + (["validation_freq"] if validation_freq != 1 else []) + list(kwargs)
        if unsupported:
            raise NotImplementedError(f"fit: arguments strata does not support: {', '.join(unsupported)}")
        if shuffle not in (True, False):
            raise NotImplementedError(f"fit: shuffle={shuffle!r}")
        engine = self._synced_engine()
        if self.optimizer is None:
            raise ValueError("You must call `compile()` before using the model (fit).")
        xs = self._arrays(x, "x", self._input_count(), self._input_keys)
        ys = self._arrays(y, "y", self._output_count(), self._output_keys)
        validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise NotImplementedError("fit: validation sample weights")
            validation = (self._arrays(validation_data[0], "validation x", self._input_count(), self._input_keys),
                          self._arrays(validation_data[1], "validation y", self._output_count(), self._output_keys))
        callbacks = list(callbacks or [])
        history = callbacks_module.History()
        # Keras trains on the first int(n · (1 − validation_split)) samples.
        train_rows = int(len(xs[0]) * (1.0 - float(validation_split))) if validation is None else len(xs[0])
        params = {"verbose": _verbosity(verbose), "epochs": int(epochs),
                  "steps": -(-train_rows // int(batch_size or 32))}
        shows_learning_rate = any(isinstance(c, (callbacks_module.ReduceLROnPlateau,
                                                 callbacks_module.LearningRateScheduler)) for c in callbacks)
        hooks = []
        for callback in callbacks + [history]:
            if not isinstance(callback, callbacks_module.Callback):
                raise TypeError(f"fit: callbacks must be keras.callbacks.Callback objects, got {callback!r}")
            callback.set_model(self)
            callback.set_params(params)
            hook = callback._strata_hook()
            if hook is not None and hook[0] == "python":
                hook = ("python", _KerasLogs(callback, self._rename, shows_learning_rate), hook[2])
            hooks.append(hook)
        self.stop_training = False
        epochs_logs = engine.fit(
            xs, ys, epochs=_count(epochs, "epochs"), batch_size=_count(batch_size or 32, "batch_size"),
            verbose=_verbosity(verbose), validation_split=float(validation_split), validation_data=validation,
            shuffle=bool(shuffle), initial_epoch=_count(initial_epoch, "initial_epoch", minimum=0),
            callbacks=[h for h in hooks if h is not None], owner=self)
        self._sync_back()
        history._record(epochs_logs, self._rename, int(initial_epoch), shows_learning_rate)
        epoch_numbers = history.epoch[-len(epochs_logs):] if epochs_logs else []
        renamed = [{name: float(value) for key, value in logs.items() for name in self._rename(key)}
                   for logs in epochs_logs]
        for callback in callbacks:
            if hasattr(callback, "_after_fit"):
                callback._after_fit(epoch_numbers, renamed)
        self.history = history
        return history

    def _metric_order(self):
        """``(strata's key, Keras's name)`` of each metric, in the order compile listed them."""
        order = getattr(self, "_metric_sequence", None) or [
            (key, name) for key, names in self._metric_keys.items() for name in names]
        return order or [("accuracy", "accuracy")]

    def _rename(self, key):
        """strata's metric keys under the names the metrics were given (``acc``, ``my_auc``, ...):
        a list, as one key can answer several requested metrics."""
        prefix = "val_" if key.startswith("val_") else ""
        return [prefix + name for name in self._metric_keys.get(key[len(prefix):], [key[len(prefix):]])]

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None,
                 callbacks=None, return_dict=False, **kwargs):
        """Keras's ``evaluate``: the loss alone, or ``[loss, *metrics]``, or a dict."""
        unsupported = [n for n, v in [("sample_weight", sample_weight), ("steps", steps), ("callbacks", callbacks)]
                       if v is not None] + list(kwargs)
        if unsupported:
            raise NotImplementedError(f"evaluate: arguments strata does not support: {', '.join(unsupported)}")
        engine = self._synced_engine()
        if self.optimizer is None:
            raise ValueError("You must call `compile()` before using the model (evaluate).")
        xs = self._arrays(x, "x", self._input_count(), self._input_keys)
        ys = self._arrays(y, "y", self._output_count(), self._output_keys)
        batch_size = _count(batch_size or 32, "batch_size")
        started = time.perf_counter()
        loss, accuracy, metrics, outputs = engine.evaluate(xs, ys, batch_size)
        seconds = time.perf_counter() - started
        results = {"loss": loss}
        if len(outputs) > 1:
            for name, output_loss, _, _ in outputs:
                results[f"{name}_loss"] = output_loss
            for name, _, output_accuracy, output_metrics in outputs:
                values = dict(output_metrics, accuracy=output_accuracy)
                for key, shown in self._metric_order():
                    if values.get(key) is not None:
                        results[f"{name}_{shown}"] = values[key]
        else:
            values = dict(metrics, accuracy=accuracy)
            # Keras's order: the metrics as compile listed them.
            for key, shown in self._metric_order():
                if values.get(key) is not None:
                    results[shown] = values[key]
        if _verbosity(verbose):
            _print_evaluation(results, -(-len(xs[0]) // batch_size), seconds, _verbosity(verbose))
        if return_dict:
            return results
        values = list(results.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None, **kwargs):
        """Keras's ``predict``: an array (a list of arrays for several outputs)."""
        if steps is not None or callbacks is not None or kwargs:
            raise NotImplementedError("predict: steps, callbacks and other arguments are not supported by strata")
        engine = self._synced_engine()
        xs = self._arrays(x, "x", self._input_count(), self._input_keys)
        outputs = engine.predict(xs, _count(batch_size or 32, "batch_size"))
        if getattr(self, "_output_dict_keys", None):
            return dict(zip(self._output_dict_keys, outputs))
        return outputs if len(outputs) > 1 else outputs[0]

    def __call__(self, x, training=None, mask=None):
        many = isinstance(x, (list, tuple))
        tensors = list(x) if many else [x]
        if training:
            # Keras runs the layers in training mode (Dropout drops, BatchNormalization uses the
            # batch's statistics); strata's forward pass outside fit is the inference one.
            raise NotImplementedError(
                f"model '{self.name}' called with training=True: strata runs a model called on data, or "
                "called as a layer of another model, in inference mode; call it with training=False (or "
                "leave training out), and fit trains it")
        if mask is not None:
            raise NotImplementedError(f"model '{self.name}' called with mask=: strata carries masks itself")
        if any(isinstance(t, KerasTensor) for t in tensors):
            return self._call_symbolic(tensors)
        # TensorFlow programs call ``.numpy()`` on the result: a strata.Tensor answers it.
        return as_tensor(self.predict(x))

    def _call_symbolic(self, tensors):
        """The model as a layer of a functional model (``x = base(inputs, training=False)``):
        described as a nested model, which strata opens up (its layers keep their names and
        weights) and records by name, as it does a Keras file's. ``training=False`` is how a
        frozen base runs in strata anyway (BatchNormalization of frozen layers in inference)."""
        if not all(isinstance(t, KerasTensor) for t in tensors):
            raise NotImplementedError(f"model '{self.name}': called on symbolic tensors and arrays at once")
        if len(tensors) != self._input_count():
            raise ValueError(f"model '{self.name}' takes {self._input_count()} inputs, called on {len(tensors)}")
        if not hasattr(self, "_inbound_nodes"):
            self._inbound_nodes = []
        self._inbound_nodes.append(tensors)
        node = len(self._inbound_nodes) - 1
        outputs = [KerasTensor(self, node, i) for i in range(self._output_count())]
        return outputs if len(outputs) > 1 else outputs[0]

    def _entry(self):
        """This model as a layer of another: Keras's entry of a nested model."""
        if isinstance(self, _Loaded):
            description = json.loads(self._engine.config())
        else:
            description = self._description()
        body = dict(description.get("config", {}), name=self.name)
        body.pop("nested_models", None)
        return {"class_name": description.get("class_name", "Functional"), "name": self.name, "config": body}

    def _take_nested_layers(self, model):
        """Makes the layers of `model`, nested in this one, answer for this model (``trainable``,
        weights), which starts from the weights `model` holds now."""
        inner = [layer for layer in model._all_layers if not isinstance(layer, InputLayer)]
        for layer in inner:
            layer._model = self
        source = model._engine_or_none()
        if source is not None and source.input_shapes():
            self._weight_sources.append((source, [layer.name for layer in inner]))

    def _copy_nested_weights(self, engine):
        """Gives the layers of nested models the weights their models held when they were added."""
        for source, names in self._weight_sources:
            for name in names:
                weights = list(source.get_weights(name))
                if weights:
                    engine.set_weights(weights, name)
        self._weight_sources = []

    def train_on_batch(self, *args, **kwargs):
        raise NotImplementedError("train_on_batch: strata trains with fit")

    def test_on_batch(self, *args, **kwargs):
        raise NotImplementedError("test_on_batch: use evaluate")

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=len(x) if len(x) else 1)

    # Weights, summary, saving ----------------------------------------------------------------

    def get_weights(self):
        """Every weight as a NumPy array, layer by layer in Keras's order."""
        return list(self._synced_engine().get_weights())

    def set_weights(self, weights):
        """Sets every weight from a list shaped as ``get_weights()`` returns."""
        self._synced_engine().set_weights([as_float32(w, "weights") for w in weights])
        self._sync_back()

    @property
    def weights(self):
        return self.get_weights()

    def count_params(self):
        return self._make_engine().count_params()

    def _weights_where(self, trainable):
        engine = self._make_engine()
        return [w for w, t in zip(engine.get_weights(), engine.weights_trainable()) if t == trainable]

    @property
    def trainable(self):
        return any(layer.trainable for layer in self._layers_with_state())

    @trainable.setter
    def trainable(self, value):
        for layer in self._layers_with_state():
            layer.trainable = value

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Keras's summary table (strata's rendering of it)."""
        text = self._make_engine().summary()
        (print_fn or print)(text.rstrip("\n"))

    def to_json(self, **kwargs):
        return self._make_engine().config()

    def get_config(self):
        return json.loads(self._make_engine().config())

    def save(self, filepath, overwrite=True, **kwargs):
        """Saves architecture, compile settings and weights: as Keras does for a path ending in
        ``.keras`` (Keras 3's archive) or ``.h5`` (the legacy HDF5 file), which Keras's own
        ``keras.models.load_model`` reads too; else in strata's model file (safetensors), which
        also keeps the optimizer's state. ``keras.models.load_model`` and the ``strata`` command
        read all three."""
        if kwargs:
            raise NotImplementedError(f"model.save: arguments strata does not support: {', '.join(kwargs)}")
        filepath = os.fspath(filepath)
        if not overwrite and os.path.exists(filepath):
            raise FileExistsError(filepath)
        self._synced_engine().save(filepath)

    def save_weights(self, filepath, overwrite=True):
        raise NotImplementedError("save_weights: use model.save, which keeps the weights with the architecture")

    def load_weights(self, filepath, **kwargs):
        raise NotImplementedError("load_weights: use keras.models.load_model")


class Sequential(Model):
    """Keras's ``Sequential``: from a list of layers, or built with ``add``."""

    def __init__(self, layers=None, name=None, trainable=True):
        super().__init__()
        self.name = name or unique_name("sequential")
        self._layers = []
        self._weight_sources = []
        # A model with branches as the first layer, and the keras.Input before it, if any.
        self._graph_base = None
        self._graph_input = None
        for layer in layers or []:
            self.add(layer)
        if not trainable:
            self.trainable = False

    def add(self, layer):
        """Appends a layer (or a ``keras.Input``, which declares the input shape)."""
        if isinstance(layer, KerasTensor):
            if not isinstance(layer._layer, InputLayer):
                raise NotImplementedError("Sequential.add: a symbolic tensor other than keras.Input")
            layer = layer._layer
        if isinstance(layer, Model):
            self._add_model(layer)
            return
        if isinstance(layer, Lambda):
            # A Lambda runs as the layers its function is made of.
            for part in layer._parts:
                self.add(part)
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be an instance of class Layer. Received: layer={layer!r}")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names. "
                             f"Name '{layer.name}' is already the name of a layer in this model.")
        if self._engine is not None and self._graph_base is not None:
            raise NotImplementedError("Sequential.add: a layer added after a model with a nested base was built")
        # The entry is read before the layer joins: once it belongs to a built model, its
        # `trainable` is asked of the engine, which does not hold it yet.
        entry = layer._entry() if self._engine is not None else None
        self._layers.append(layer)
        layer._model = self
        if entry is not None:
            self._engine.add(json.dumps(entry))
            shapes = self._declared_shapes()
            if shapes is not None:
                # Built already: the new layer is built at once too (the others keep theirs).
                self._engine.build(shapes)

    def _add_model(self, model):
        """A model as a layer (``Sequential([base, layers.Softmax()])``): its layers are added in
        order, starting from the weights the model holds now. strata opens nested models up, as
        it does when it imports a Keras file, so the outer model holds its own copy of them: the
        inner model's layers answer for the outer one from then on (``trainable``, weights)."""
        opened = isinstance(model, Sequential) or (
            model._class_name == "Sequential" if isinstance(model, _Loaded) else _is_chain(model))
        if not opened:
            self._add_graph_model(model)
            return
        inner = [layer for layer in model._all_layers if not (self._layers and isinstance(layer, InputLayer))]
        source = model._engine_or_none()
        if source is not None and source.input_shapes():
            self._weight_sources.append((source, [layer.name for layer in inner if not isinstance(layer, InputLayer)]))
        for layer in inner:
            self.add(layer)

    def _add_graph_model(self, model):
        """A model with branches as the first layer, as Keras's transfer-learning recipe writes
        ``Sequential([base, GlobalAveragePooling2D(), Dense(5)])``: described as a nested model,
        which strata opens up (its layers keep their names and weights) and records by name, as
        it does a Keras file's; ``base.trainable = False`` freezes its layers in this model."""
        if self._graph_base is not None or any(not isinstance(layer, InputLayer) for layer in self._layers):
            raise NotImplementedError(
                f"Sequential.add: the model '{model.name}' has branches; strata nests such a model only as the "
                "first layer (after a keras.Input), or call it on a symbolic tensor in a functional model")
        if self._engine is not None:
            raise NotImplementedError("Sequential.add: a model with branches added after the model was built")
        if model._input_count() != 1 or model._output_count() != 1:
            raise NotImplementedError(
                f"Sequential.add: the model '{model.name}' has {model._input_count()} inputs and "
                f"{model._output_count()} outputs; a layer of a Sequential takes one and gives one")
        self._graph_input = self._layers[0] if self._layers else None
        self._layers = []
        self._graph_base = model
        self._take_nested_layers(model)

    def _graph_entries(self):
        """The keras.Input (the base's own shape without one) and the nested base's entry."""
        base = self._graph_base
        if self._graph_input is not None:
            first = self._graph_input._entry()
        else:
            if isinstance(base, _Loaded):
                shape = list(base._engine.input_shapes()[0])
            else:
                shape = base._inputs[0]._layer._config["shape"]
            first = {"class_name": "InputLayer", "config": {"name": f"{self.name}_input", "shape": shape}}
        return [first, base._entry()]

    def pop(self, rebuild=True):
        """Removes the last layer and returns it, as Keras: the other layers keep their weights
        (and the model its compile settings)."""
        if self._graph_base is not None:
            raise NotImplementedError("Sequential.pop on a model whose first layer is a model with branches")
        layers = [layer for layer in self._layers if not isinstance(layer, InputLayer)]
        if not layers:
            raise TypeError("There are no layers in the model.")
        last = layers[-1]
        engine = self._engine
        if engine is None:
            self._layers.remove(last)
            last._model = None
            return last
        kept = [layer for layer in layers if layer is not last]
        weights = {layer.name: list(engine.get_weights(layer.name)) for layer in kept}
        trainable = {layer.name: engine.layer_trainable(layer.name) for layer in kept + [last]}
        compiled = self._compile_settings if self.optimizer is not None else None
        for layer in kept + [last]:
            layer._trainable = trainable[layer.name]
        self._layers.remove(last)
        last._model = None
        self._engine = None
        engine = self._make_engine()
        if engine.input_shapes():
            for name, values in weights.items():
                if values:
                    engine.set_weights(values, name)
        if compiled is not None:
            engine.compile(compiled)
        return last

    @property
    def input(self):
        raise NotImplementedError(
            f"Sequential model '{self.name}': model.input (strata's Sequential models have no symbolic tensors; "
            "build the model with keras.Input and layer calls to use model.input and layer.output)")

    output = input

    @property
    def _all_layers(self):
        if self._graph_base is None:
            return self._layers
        return [layer for layer in self._graph_base._all_layers if not isinstance(layer, InputLayer)] + self._layers

    @property
    def layers(self):
        layers = [layer for layer in self._layers if not isinstance(layer, InputLayer)]
        return layers if self._graph_base is None else [self._graph_base] + layers

    @property
    def inputs(self):
        raise NotImplementedError("Sequential.inputs")

    @property
    def outputs(self):
        raise NotImplementedError("Sequential.outputs")

    def _input_count(self):
        return 1

    def _output_count(self):
        return 1

    def _declared_shapes(self):
        if self._graph_base is not None:
            first = self._graph_entries()[0]["config"]["shape"]
            return None if None in first else [[int(d) for d in first]]
        if not self._layers:
            return None
        config = self._layers[0]._config
        shape = config.get("shape") if isinstance(self._layers[0], InputLayer) else config.get("input_shape")
        if shape is None or None in list(shape):
            return None
        return [[int(d) for d in shape]]

    def _description(self):
        entries = [] if self._graph_base is None else self._graph_entries()
        entries += [layer._entry() for layer in self._layers]
        return {"class_name": "Sequential", "config": {"name": self.name, "layers": entries}}


class _Loaded(Model):
    """A model read from a file: its layers are made from the config the engine holds."""

    def __init__(self, engine):
        super(Model, self).__init__()
        self._engine = None
        self.stop_training = False
        self.history = None
        self._metric_keys = {}
        self._engine = engine
        config = json.loads(engine.config())
        body = config.get("config", config)
        self._class_name = config.get("class_name")
        self.name = body.get("name", "model")
        from . import layers as layers_module

        self._layers = []
        for entry in body.get("layers", []):
            cls = getattr(layers_module, entry["class_name"], None) or layers_module.Layer
            layer = cls.__new__(cls)
            layer_config = dict(entry.get("config", {}))
            layer.name = layer_config.pop("name", entry.get("name"))
            layer._trainable = layer_config.pop("trainable", True)
            layer._config = layer_config
            layer._model = self
            layer._inbound_nodes = []
            self._layers.append(layer)
        inputs = len(engine.input_shapes()) or 1
        self._inputs = [None] * inputs
        self._outputs = [None] * max(1, len(engine.output_names()))
        if engine.learning_rate() is not None:
            compile_config = json.loads(engine.compile_config() or "{}")
            self.optimizer = optimizers_module.get(compile_config.get("optimizer", "rmsprop"))
            self.optimizer._model = self
            metrics = compile_config.get("metrics") or []
            flat = [m for entry in metrics for m in (entry if isinstance(entry, list) else [entry])]
            self._metric_keys = {key: [key] for key in flat}
        else:
            self.optimizer = None

    @property
    def _all_layers(self):
        return self._layers

    @property
    def input(self):
        raise NotImplementedError(
            f"model '{self.name}' read from a file: model.input (call the model on a keras.Input instead)")

    output = input

    @property
    def layers(self):
        # Keras 3 lists a functional model's InputLayers, not a Sequential model's.
        if self._class_name == "Sequential":
            return [layer for layer in self._layers if not isinstance(layer, InputLayer)]
        return list(self._layers)

    def _input_count(self):
        return len(self._inputs)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Loads a model saved by ``model.save`` (strata's file), or a Keras ``.keras`` archive or
    legacy ``.h5`` file with the layers strata has."""
    if custom_objects:
        raise NotImplementedError("load_model: custom_objects (strata cannot run Python layers)")
    return _Loaded(_strata.Engine.load(os.fspath(filepath)))


def clone_model(model, *args, **kwargs):
    raise NotImplementedError("keras.models.clone_model")



def _print_evaluation(results, steps, seconds, verbose):
    """The line Keras 3 prints after ``evaluate``: the finished bar at verbose 1, the plain line
    at verbose 2 (metrics in alphabetical order, as Keras's logs)."""
    per_step = seconds / max(steps, 1)
    per_step_text = f"{per_step * 1e3:.0f}ms/step" if per_step >= 1e-3 else f"{per_step * 1e6:.0f}us/step"
    metrics = " - ".join(f"{name}: {value:.4f}" for name, value in sorted(results.items()))
    total = f"{seconds:.0f}s"
    if verbose == 1:
        print(f"{steps}/{steps} " + "\u2501" * 20 + f" {total} {per_step_text} - {metrics}")
    else:
        print(f"{steps}/{steps} - {total} - {per_step_text} - {metrics}")


def _keras_layer_order(inputs, outputs):
    """A functional model's layers in Keras 3's order (``Functional.layers``, the order of its
    config, summary and weights): deepest first (the InputLayers at the top), and layers of one
    depth in the order a depth-first walk from the outputs meets them."""
    indices, finished, in_progress, nodes = {}, set(), set(), []
    input_ids = {id(t) for t in inputs}
    layers = {}

    def walk(tensor):
        layer, node = tensor._layer, (id(tensor._layer), tensor._node_index)
        if node in finished:
            return
        if node in in_progress:
            raise ValueError(f"keras.Model: the graph has a cycle at layer '{layer.name}'")
        layers[id(layer)] = layer
        indices.setdefault(id(layer), len(indices))
        in_progress.add(node)
        if not isinstance(layer, InputLayer) and id(tensor) not in input_ids:
            for parent in layer._inbound_nodes[tensor._node_index]:
                walk(parent)
        finished.add(node)
        in_progress.remove(node)
        nodes.append((tensor._layer, tensor._node_index))

    for tensor in outputs:
        walk(tensor)
    node_depths, layer_depths = {}, {}
    for layer, index in reversed(nodes):
        key = (id(layer), index)
        depth = max(node_depths.setdefault(key, 0), layer_depths.get(id(layer), 0))
        layer_depths[id(layer)] = depth
        node_depths[key] = depth
        if not isinstance(layer, InputLayer):
            for parent in layer._inbound_nodes[index]:
                parent_key = (id(parent._layer), parent._node_index)
                node_depths[parent_key] = max(depth + 1, node_depths.get(parent_key, 0))
    for tensor in inputs:
        # An input the outputs do not read comes last, as in Keras.
        if id(tensor._layer) not in layer_depths:
            layers[id(tensor._layer)] = tensor._layer
            layer_depths[id(tensor._layer)] = 0
            indices[id(tensor._layer)] = -1
    return sorted(layers.values(), key=lambda layer: (-layer_depths[id(layer)], indices[id(layer)]))


def _is_chain(model):
    """Whether a functional model is one chain of single-input layers (it can be opened up into
    a Sequential)."""
    return all(len(layer._inbound_nodes) <= 1 and all(len(node) <= 1 for node in layer._inbound_nodes)
               for layer in model._all_layers) and len(model._inputs) == 1 and len(model._outputs) == 1


def _is_dataset(data):
    module = type(data).__module__ or ""
    return module.startswith(("tensorflow", "torch")) or hasattr(data, "__next__") or (
        hasattr(data, "__iter__") and not hasattr(data, "__len__"))


def _count(value, what, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int,)) and not hasattr(value, "__index__"):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{what} must be at least {minimum}, got {value}")
    return value


def _verbosity(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


class _KerasLogs:
    """Hands the engine's hook calls to a Python callback with the logs Keras would give it:
    metric keys under the names the metrics were given, in Keras's (sorted) order, and the
    learning rate only where a learning-rate callback puts it there, as Keras's do."""

    def __init__(self, callback, rename, shows_learning_rate):
        self._callback = callback
        self._rename = rename
        self._shows_learning_rate = shows_learning_rate

    def _translate(self, logs):
        named = {name: value for key, value in logs.items()
                 if key != "learning_rate" or self._shows_learning_rate for name in self._rename(key)}
        return dict(sorted(named.items()))

    def __getattr__(self, hook):
        method = getattr(self._callback, hook)

        def call(*args):
            *position, logs = args
            return method(*position, self._translate(logs))
        return call
