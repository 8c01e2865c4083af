"""engine: a Keras-compatible deep-learning engine with OpenMP Cython kernels for the CPU.

Change `keras` to `engine` in Keras code and it runs:

    from engine import Input, layers, Model
"""
__version__ = "0.1.0"

from engine import config
from engine.variables import Variable
from engine.autodiff import GradientTape
from engine import ops
from engine import activations, initializers, regularizers, constraints
from engine import losses, metrics, optimizers, callbacks
from engine.losses import Loss
from engine.metrics import Metric
from engine.optimizers import Optimizer
from engine import layers
from engine.layers import Input, InputLayer, Layer
from engine import models
from engine.models import Model, Sequential
from engine import utils
from engine import random
from engine import applications
from engine import saving
from engine import tree
from engine import datasets, preprocessing  # keras.datasets, keras.preprocessing

backend = config
