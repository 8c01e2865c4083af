"""engine: a Keras-compatible deep-learning engine with OpenMP Cython kernels for the CPU.

Change `keras` to `engine` in Keras code and it runs:

    from engine import Input, layers, Model

What a model needs (ops, layers, models, losses, metrics, optimizers) is imported with the package;
the data sets, applications, data utilities and keras.preprocessing paths load on first use.
"""
__version__ = "0.1.0"

from engine._lazy import lazy_attributes, lazy_table
from engine import config
from engine.variables import Variable
from engine.autodiff import GradientTape
from engine import ops
from engine import activations, initializers, regularizers, constraints
from engine import losses, metrics, optimizers
from engine.losses import Loss
from engine.metrics import Metric
from engine.optimizers import Optimizer
from engine import layers
from engine.layers import Input, InputLayer, InputSpec, Layer
from engine.layers.keras_tensor import KerasTensor
from engine.initializers import Initializer
from engine.regularizers import Regularizer
from engine import dtype_policies
from engine.dtype_policies import DTypePolicy, FloatDTypePolicy
from engine import models
from engine.models import Model, Sequential
from engine import random
from engine import saving
from engine import backend
from engine.backend import device, name_scope


def version():
    """The version of engine installed, as a string (`engine.__version__`)."""
    return __version__

# keras.callbacks, keras.utils, keras.applications, keras.datasets, keras.mixed_precision,
# keras.preprocessing, keras.tree
_LAZY = lazy_table(__name__, {"": "applications callbacks datasets mixed_precision preprocessing tree utils"})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
