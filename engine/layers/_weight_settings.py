"""The kernel / bias settings the dense-like layers (Dense, EinsumDense, the convolutions,
MultiHeadAttention) take, resolved once."""
from engine import constraints, initializers, regularizers


def set_kernel_and_bias_settings(layer, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                                 kernel_constraint, bias_constraint):
    """Store the resolved initializers, regularizers and constraints on `layer` under the
    argument names (get_config reads them back from there)."""
    layer.kernel_initializer = initializers.get(kernel_initializer)
    layer.bias_initializer = initializers.get(bias_initializer)
    layer.kernel_regularizer = regularizers.get(kernel_regularizer)
    layer.bias_regularizer = regularizers.get(bias_regularizer)
    layer.kernel_constraint = constraints.get(kernel_constraint)
    layer.bias_constraint = constraints.get(bias_constraint)
