"""1-D depthwise and separable convolutions (channels_last): DepthwiseConv1D, SeparableConv1D,
run as their 2-D counterparts on sequences seen as images of height 1."""
from engine import ops
from engine.layers.convolutional import DepthwiseConv2D, SeparableConv2D
from engine.ops import convolution as conv_ops
from engine.saving.registry import register_builtins


def _settings(layer, names):
    """Constructor settings Keras's 1-D layers write that the 2-D bases' configs leave out."""
    from engine.saving.serialization import serialize_keras_object
    return {n: serialize_keras_object(getattr(layer, n, None)) for n in names}


class DepthwiseConv1D(DepthwiseConv2D):
    """Depthwise 1-D convolution (one filter set per channel), as keras.layers.DepthwiseConv1D;
    kernel (kernel_size, channels, depth_multiplier).

    Args:
        kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
        use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer,
        bias_regularizer, activity_regularizer, depthwise_constraint, bias_constraint.
    """

    rank = 1

    def __init__(self, kernel_size, strides=1, padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=1, **kwargs):
        super().__init__(kernel_size, strides=strides, padding=padding, depth_multiplier=depth_multiplier,
                         data_format=data_format, dilation_rate=dilation_rate, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(_settings(self, ("bias_regularizer", "bias_constraint")))
        return config


class SeparableConv1D(SeparableConv2D):
    """A depthwise 1-D convolution, then a pointwise (size 1) one mixing the channels, as
    keras.layers.SeparableConv1D; depthwise kernel (k, channels, depth_multiplier), pointwise
    kernel (1, channels * depth_multiplier, filters).

    Args:
        filters, kernel_size, strides, padding, data_format, dilation_rate, depth_multiplier,
        activation, use_bias, depthwise_initializer, pointwise_initializer, bias_initializer,
        depthwise_regularizer, pointwise_regularizer, bias_regularizer, activity_regularizer,
        depthwise_constraint, pointwise_constraint, bias_constraint.
    """

    rank = 1

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1,
                 depth_multiplier=1, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, depth_multiplier=depth_multiplier, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(_settings(self, ("bias_regularizer", "bias_constraint", "pointwise_regularizer",
                                       "pointwise_constraint")))
        return config

    def build(self, input_shape):
        super().build(input_shape)
        # Keras's 1-D pointwise kernel has no leading row axis: (1, channels, filters).
        weights = self._trainable_weights_list
        at = next(i for i, w in enumerate(weights) if w is self.pointwise_kernel)
        shape = (1,) + tuple(self.pointwise_kernel.shape[2:])
        self.pointwise_kernel = self.add_weight(
            shape=shape, initializer=self.pointwise_initializer, regularizer=self.pointwise_regularizer,
            constraint=self.pointwise_constraint, name="pointwise_kernel")
        # In the 2-D kernel's place: Keras's order depthwise_kernel, pointwise_kernel, bias.
        weights[at] = weights.pop()

    def _run(self, x, kernel, bias, activation):
        n, steps, channels = x.shape
        x = ops.reshape(x, (n, 1, steps, channels))
        depthwise = ops.reshape(self.depthwise_kernel, (1,) + tuple(self.depthwise_kernel.shape))
        pointwise = ops.reshape(self.pointwise_kernel, (1,) + tuple(self.pointwise_kernel.shape))
        depth = conv_ops.conv2d(x, depthwise, None, strides=self._as_2d(self.strides), padding=self.padding,
                                dilation_rate=self._as_2d(self.dilation_rate), depthwise=True)
        y = conv_ops.conv2d(depth, pointwise, bias, activation=activation)
        return ops.reshape(y, (n, y.shape[2], y.shape[3]))


SeparableConvolution1D = SeparableConv1D


register_builtins("layers", globals())  # loadable from .keras configs by class name
