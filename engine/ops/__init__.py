"""engine.ops: differentiable ops with Keras 3's names (keras.ops.*).

The families live in their own modules and namespaces, as in Keras: engine.ops.numpy (numpy-like
ops), engine.ops.nn, engine.ops.linalg, engine.ops.image and the core ops (control flow,
scatter, slicing, segment reductions); every name is also at engine.ops.X.
"""
from engine.ops.numpy import *  # noqa: F401,F403
from engine.ops import numpy  # noqa: F401  (keras.ops.numpy.* lives beside keras.ops.*)
from engine.ops.numpy import get_item, corrcoef, tanh  # noqa: F401
from engine.ops.math import (cast, stop_gradient, convert_to_tensor, convert_to_numpy, shape, one_hot,  # noqa: F401
                             getitem, is_tensor)
from engine.ops.nn import (relu, sigmoid, tanh, elu, selu, softplus, gelu, silu, swish, leaky_relu,  # noqa: F401
                           softmax, log_softmax, dense, bias_add, dropout, categorical_crossentropy,
                           sparse_categorical_crossentropy, binary_crossentropy)
from engine.ops.activation_fns import *  # noqa: F401,F403
from engine.ops.normalizing import *  # noqa: F401,F403
from engine.ops.patches import *  # noqa: F401,F403
from engine.ops.nn import (dot_product_attention, ctc_loss, ctc_decode, multi_hot, conv, conv_transpose,  # noqa: F401
                           depthwise_conv, separable_conv, max_pool, average_pool)
from engine.ops.linalg import *  # noqa: F401,F403  (keras.ops has the linalg names too)
from engine.ops import linalg  # noqa: F401
from engine.ops import operators as _operators  # noqa: F401  (installs Tensor's Python operators)
from engine.ops import math  # noqa: F401
from engine.ops import nn  # noqa: F401
from engine.ops.core import *  # noqa: F401,F403,E402  (control flow, slicing, scatter, segments)
from engine.ops.einops import rearrange  # noqa: F401,E402
from engine.ops.spectral import *  # noqa: F401,F403,E402
from engine.ops import image  # noqa: F401,E402
from engine.ops.attention import dot_product_attention
from engine.ops.layernorm import layer_normalization, rms_normalization
from engine.ops.transposed_conv import conv_transpose
