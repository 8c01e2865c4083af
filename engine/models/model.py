"""Model: a Layer that can be trained. `Model(inputs, outputs)` builds a functional model;
subclassing Model and defining `call` gives a subclassed one."""
import numpy as np

from engine.layers.base import Layer, unique_name
from engine.layers.keras_tensor import flatten
from engine.models.trainer import Trainer
from engine.utils.traceback_utils import filter_traceback


def _functional_arguments(args, kwargs):
    return len(args) >= 2 or "inputs" in kwargs or "outputs" in kwargs


_functional_subclasses = {}


def _functional_subclass(cls):
    """`class CustomModel(Model)` built as `CustomModel(inputs, outputs)` is a functional model
    with the subclass's methods (its train_step, its properties): a class deriving from both,
    made once per subclass. Its MRO puts the subclass before Functional, so the subclass's
    overrides win and its `super().__init__(inputs, outputs)` reaches Functional's."""
    from engine.models.functional import Functional
    made = _functional_subclasses.get(cls)
    if made is None:
        made = type(cls.__name__, (cls, Functional), {"__module__": cls.__module__,
                                                      "__qualname__": cls.__qualname__,
                                                      "_functional_of": cls})
        _functional_subclasses[cls] = made
    return made


class Model(Trainer, Layer):
    """A Layer that can be trained. `Model(inputs, outputs)` builds a functional model (also for
    subclasses: `CustomModel(inputs, outputs)`); subclassing Model and defining `call` gives a
    subclassed one.

    Args:
        inputs, outputs: the functional model's Input tensors and output tensors (each one
            tensor, a list or a dict).
        name: the model's name.
    """

    def __new__(cls, *args, **kwargs):
        if _functional_arguments(args, kwargs):
            from engine.models.functional import Functional
            if cls is Model:
                return Functional.__new__(Functional)
            if not issubclass(cls, Functional):
                return object.__new__(_functional_subclass(cls))
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        name = kwargs.pop("name", None)
        Layer.__init__(self, name=name or unique_name(_snake(type(self).__name__)), **kwargs)
        self._init_trainer()

    # -- the pieces the trainer needs; Functional overrides them ------------------------------
    @property
    def output_names(self):
        names = self.__dict__.get("_output_names_cache")
        return names if names is not None else ["output"]

    @output_names.setter
    def output_names(self, value):
        self.__dict__["_output_names_cache"] = list(value)

    @property
    def layers(self):
        return list(self._layers)

    # A subclassed model knows its inputs only from the data; Functional overrides these four.
    def _input_names_for_errors(self):
        return ["x"]

    def _prepare_x(self, x):
        def convert(a):
            a = np.asarray(a)
            return a.astype(self.dtype) if a.dtype.kind == "f" else a
        return [convert(a) for a in x] if isinstance(x, (list, tuple)) else [convert(x)]

    def _forward(self, xs):
        """Run the model on prepared arrays; returns the flat list of outputs."""
        inputs = xs[0] if len(xs) == 1 else xs
        out = self._call_eager((inputs,), {})
        outs = flatten(out)
        if "_output_names_cache" not in self.__dict__:
            self.output_names = ["output"] if len(outs) == 1 else [f"output_{i + 1}" for i in range(len(outs))]
        return outs

    def _pack_outputs(self, outs):
        return outs[0] if len(outs) == 1 else outs

    def get_layer(self, name=None, index=None):
        """The layer of that name, or at that index of `layers` (Python indexing, so -1 is the last;
        as in Keras, an index past the end is a ValueError and one before the start an IndexError)."""
        if index is not None and name is not None:
            raise ValueError(f"get_layer: pass a layer name or a layer index, not both; got index={index}, "
                             f"name={name!r}")
        layers = self.layers
        if index is not None:
            if index >= len(layers):
                raise ValueError(f"get_layer: asked for the layer at index {index}, but the model has only "
                                 f"{len(layers)} layers")
            if index < -len(layers):
                raise IndexError(f"get_layer: index {index} is out of range for a model with {len(layers)} "
                                 f"layers (the lowest index is {-len(layers)})")
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(f"No such layer: {name}. Existing layers are: {[l.name for l in layers]}.")
        raise ValueError("get_layer: pass either a layer name or a layer index")

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        from engine.models.summary import print_summary
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn)

    def compute_output_shape(self, input_shape):
        if hasattr(self, "outputs"):
            shapes = [t.shape for t in self.outputs]
            return shapes[0] if len(shapes) == 1 else shapes
        raise NotImplementedError


def _snake(name):
    from engine.layers.base import snake_case
    return snake_case(name)


def _saving_methods():
    """save / save_weights / load_weights / to_json / build_from_config, shared by every model kind."""
    import os

    def save(self, filepath, overwrite=True, **kwargs):
        from engine.saving.archive import save_model
        save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        from engine.saving.archive import atomic_write
        from engine.saving.weights import save_weights_to_h5
        if not str(filepath).endswith(".weights.h5"):
            raise ValueError(f"save_weights: the file name must end in .weights.h5, got {filepath!r}")
        if os.path.exists(filepath) and not overwrite:
            raise ValueError(f"save_weights: {filepath} exists and overwrite=False")
        atomic_write(filepath, lambda tmp: save_weights_to_h5(self, tmp))

    def load_weights(self, filepath, skip_mismatch=False):
        from engine.saving.weights import load_weights_from_h5
        if str(filepath).endswith(".keras"):
            from engine.saving.archive import load_weights_from_archive
            load_weights_from_archive(self, filepath, skip_mismatch=skip_mismatch)
            return
        load_weights_from_h5(self, os.fspath(filepath), skip_mismatch=skip_mismatch)

    def to_json(self, **kwargs):
        import json
        from engine.saving.serialization import serialize_keras_object
        return json.dumps(serialize_keras_object(self), **kwargs)

    def build_from_config(self, config):
        """Create a subclassed model's weights from the input shape recorded when it was saved
        (Keras's `build_from_config`; functional and Sequential models, and the layers in them,
        are built by replaying their calls, so they ignore it).

        Args:
            config: the saved build config, {"input_shape": ...}.
        """
        from engine.layers.base import training_scope
        shape = (config or {}).get("input_shape")
        if shape is None or hasattr(self, "_nodes") or self.weights:
            return

        def sample(s, dtype):
            if isinstance(s, dict):
                return {k: sample(v, dtype) for k, v in s.items()}
            if s and isinstance(s[0], (list, tuple, dict)):
                return [sample(v, dtype) for v in s]
            return np.zeros((1,) + tuple(1 if d is None else d for d in s[1:]), dtype=dtype)

        first_error = None
        for dtype in (self.dtype, "int32"):  # integer-input models (embeddings) need integer samples
            try:
                with training_scope(False):
                    self._call_eager((sample(shape, dtype),), {})
                self._built_by_data = True
                return
            except Exception as e:  # noqa: BLE001 - report the first failure if no dtype works
                first_error = first_error or e
        raise ValueError(f"Could not build model {self.name!r} from its saved input shape {shape}: {first_error}")

    return save, save_weights, load_weights, to_json, build_from_config


(Model.save, Model.save_weights, Model.load_weights, Model.to_json,
 Model.build_from_config) = _saving_methods()


# Errors raised inside a training, evaluation or prediction call reach the user with engine's
# frames taken out, as Keras's do (config.disable_traceback_filtering() shows them).
for _name in ("fit", "evaluate", "predict", "train_on_batch", "test_on_batch", "predict_on_batch"):
    setattr(Model, _name, filter_traceback(getattr(Model, _name)))
del _name
