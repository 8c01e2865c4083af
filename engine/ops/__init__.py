"""engine.ops: differentiable ops with Keras 3's names (keras.ops.*).

The families live in their own modules and namespaces, as in Keras: engine.ops.numpy (numpy-like
ops), engine.ops.nn, engine.ops.linalg, engine.ops.image and the core ops (control flow,
scatter, slicing, segment reductions); every name is also at engine.ops.X.

Only ops/math.py (the arithmetic every Tensor operator needs) and the operators are imported
with the package; every other name loads its module on first use (`engine.ops.fft`, `from
engine.ops import conv`), so `import engine` does not compile ~300 ops it may never call.
"""
from engine._lazy import lazy_attributes, lazy_table, public_names
from engine.ops import math  # noqa: F401  (the core ops: arithmetic, reductions, matmul, shapes, casts)
from engine.ops import operators as _operators  # noqa: F401  (installs Tensor's Python operators)

# Every public name of keras.ops (and engine's extras), by the module that defines it.
_LAZY = lazy_table(__name__, {
    '': (
        "activation_fns arrays attention contraction convolution core creation ctc einops elementwise "
        "embedding image layernorm layout linalg math nn normalization normalizing numpy operators patches "
        "recurrent reductions spectral transposed_conv"),
    'engine.ops.activation_fns': (
        "celu glu hard_shrink hard_sigmoid hard_silu hard_swish hard_tanh log_sigmoid relu6 soft_shrink "
        "softsign sparse_plus sparse_sigmoid sparsemax squareplus tanh_shrink threshold"),
    'engine.ops.arrays': (
        "append array_split broadcast_to diag diagflat diagonal dsplit dstack flip fliplr flipud hsplit "
        "hstack isin moveaxis ndim pad ravel repeat roll rot90 select size split swapaxes take_along_axis "
        "tile tril triu unravel_index unstack vander vectorize view vsplit vstack"),
    'engine.ops.attention': "dot_product_attention",
    'engine.ops.contraction': "correlate cross dot einsum inner kron outer tensordot trace vdot",
    'engine.ops.convolution': "average_pool conv depthwise_conv max_pool separable_conv",
    'engine.ops.core': (
        "associative_scan cdist cond custom_gradient dtype fori_loop map saturate_cast scan scatter "
        "scatter_update segment_max segment_min segment_prod segment_sum slice slice_update switch "
        "vectorized_map while_loop"),
    'engine.ops.creation': (
        "arange array bartlett blackman copy empty empty_like eye full full_like geomspace hamming hanning "
        "identity kaiser linspace logspace meshgrid tri"),
    'engine.ops.ctc': "ctc_decode ctc_loss",
    'engine.ops.einops': "rearrange",
    'engine.ops.elementwise': (
        "allclose angle arccos arccosh arcsin arcsinh arctan arctan2 arctanh bitwise_and bitwise_invert "
        "bitwise_left_shift bitwise_not bitwise_or bitwise_right_shift bitwise_xor cbrt ceil conj conjugate "
        "cosh deg2rad divide_no_nan erf erfc erfinv exp2 expm1 fabs floor fmax fmin fmod gcd heaviside hypot "
        "i0 imag isclose isfinite isinf isnan isneginf isposinf isreal lcm ldexp left_shift log10 log2 "
        "logaddexp logaddexp2 nan_to_num nextafter rad2deg real right_shift round rsqrt signbit sinc sinh tan "
        "trunc"),
    'engine.ops.layernorm': "layer_normalization rms_normalization",
    'engine.ops.linalg': (
        "cholesky cholesky_inverse det eig eigh inv jvp logdet lstsq lu_factor matrix_rank norm pinv qr "
        "slogdet solve solve_triangular svd"),
    'engine.ops.math': (
        "abs absolute add amax amin argmax argmin cast clip concatenate convert_to_numpy convert_to_tensor "
        "cos divide equal exp expand_dims floor_divide get_item=getitem getitem greater greater_equal "
        "is_tensor less less_equal log log1p logical_and logical_not logical_or logical_xor matmul max "
        "maximum mean min minimum mod multi_hot multiply negative not_equal one_hot ones ones_like power "
        "reciprocal reshape shape sign sin sqrt square squeeze stack stop_gradient subtract sum take "
        "transpose true_divide where zeros zeros_like"),
    'engine.ops.nn': (
        "bias_add binary_crossentropy categorical_crossentropy dense dropout elu gelu leaky_relu log_softmax "
        "relu selu sigmoid silu softmax softplus sparse_categorical_crossentropy swish tanh"),
    'engine.ops.normalizing': "batch_normalization moments normalize psnr",
    'engine.ops.patches': "adaptive_average_pool adaptive_max_pool depth_to_space extract_sequences fold space_to_depth unfold",
    'engine.ops.reductions': (
        "all any argpartition argsort average bincount corrcoef count_nonzero cumprod cumsum diff digitize "
        "histogram in_top_k logsumexp median nanargmax nanargmin nancumprod nancumsum nanmax nanmean "
        "nanmedian nanmin nanpercentile nanprod nanquantile nanstd nansum nanvar nonzero percentile prod ptp "
        "quantile searchsorted sort std top_k trapezoid unique var"),
    'engine.ops.spectral': "fft fft2 ifft2 irfft istft polar rfft stft view_as_complex view_as_real",
    'engine.ops.transposed_conv': "conv_transpose",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
__all__ = public_names(globals(), _LAZY)   # `from ... import *` loads and binds every name
