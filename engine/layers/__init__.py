"""engine.layers: the Keras layers, by family."""
from engine.layers.base import Layer
from engine.layers.input_layer import Input, InputLayer
from engine.layers.core import (Dense, Activation, Dropout, Flatten, Reshape, Permute, RepeatVector, Identity,
                                Lambda)
from engine.layers.merging import (Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot,
                                   add, subtract, multiply, average, maximum, minimum, concatenate, dot)
from engine.layers.embedding import Embedding
from engine.layers.recurrent import LSTM, GRU, SimpleRNN, Bidirectional
