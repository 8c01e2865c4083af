"""engine.ops: differentiable ops with Keras 3's names (keras.ops.*)."""
from engine.ops.math import *  # noqa: F401,F403
from engine.ops.math import (add, subtract, multiply, divide, true_divide, power, maximum, minimum,
                             negative, square, sqrt, exp, log, log1p, abs, absolute, sin, cos,
                             reciprocal, sign, clip, sum, mean, max, min, amax, amin, argmax, argmin,
                             matmul, dot, reshape, transpose, expand_dims, squeeze, concatenate, stack,
                             take, where, cast, stop_gradient, convert_to_tensor, convert_to_numpy,
                             shape, zeros, ones, zeros_like, ones_like, one_hot, pad, repeat)
from engine.ops.convolution import conv, depthwise_conv, max_pool, average_pool
from engine.ops.nn import (relu, sigmoid, tanh, elu, selu, softplus, gelu, silu, swish, leaky_relu,
                           softmax, log_softmax, dense, bias_add, dropout, categorical_crossentropy,
                           sparse_categorical_crossentropy, binary_crossentropy)
from engine.ops.math import (floor_divide, mod, equal, not_equal, less, less_equal, greater,
                             greater_equal, logical_and, logical_or, logical_xor, logical_not, getitem,
                             is_tensor)
from engine.ops import operators as _operators  # noqa: F401  (installs Tensor's Python operators)
from engine.ops import math as numpy  # keras.ops.numpy.* lives beside keras.ops.*
from engine.ops import nn  # noqa: F401
from engine.ops.attention import dot_product_attention
from engine.ops.layernorm import layer_normalization, rms_normalization
from engine.ops.transposed_conv import conv_transpose
