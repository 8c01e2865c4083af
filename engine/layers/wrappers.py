"""layers.Wrapper: the base class of layers that wrap another layer (TimeDistributed,
Bidirectional, user wrappers)."""
from engine.layers.base import Layer
from engine.saving.registry import register_builtins


class Wrapper(Layer):
    """A layer built around another layer, as keras.layers.Wrapper: the inner layer is tracked
    (its weights are the wrapper's), built on first use, and saved in the config as "layer".

    Args:
        layer: the wrapped layer (or its serialized config).
    """

    def __init__(self, layer, **kwargs):
        if isinstance(layer, dict):
            from engine.saving.serialization import deserialize_keras_object
            layer = deserialize_keras_object(layer)
        if not isinstance(layer, Layer):
            raise ValueError(f"{type(self).__name__}: the wrapped object must be a layer, got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def build(self, input_shape=None):
        if not self.layer.built:
            self.layer._maybe_build(input_shape)      # in this layer's name scope: "wrapper/dense/kernel"
        self.built = True

    def get_config(self):
        from engine.saving.serialization import serialize_keras_object
        config = super().get_config()
        config["layer"] = serialize_keras_object(self.layer)
        return config

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        config["layer"] = deserialize_keras_object(config["layer"])
        return cls(**config)


register_builtins("layers", globals())  # loadable from .keras configs by class name
