"""The CategoryEncoding layer: integer category ids to one-hot, multi-hot or count vectors."""
from engine.layers.base import Layer
from engine.layers.preprocessing import _encoding
from engine.layers.preprocessing._base import to_numpy
from engine.saving.registry import register_builtins


class CategoryEncoding(Layer):
    """Encode integer ids in [0, num_tokens) as vectors (ids outside the range encode to nothing).

    Args:
        num_tokens: the number of categories (the output's last size).
        output_mode: "multi_hot" (default; "binary" is its old name): 1 for each id present in a
            sample; "one_hot": one vector per id; "count": how often each id occurs.
        sparse: must be False (engine has no sparse tensors).

    Call arguments:
        inputs: integer ids: a batch of samples (batch, n) (or one sample (n,), or a scalar).
        count_weights: with output_mode="count", a weight per id (the same shape as inputs) summed
            instead of 1.
    """

    def __init__(self, num_tokens=None, output_mode="multi_hot", sparse=False, **kwargs):
        super().__init__(**kwargs)
        if output_mode == "binary":
            output_mode = "multi_hot"
        if output_mode not in ("count", "one_hot", "multi_hot"):
            raise ValueError(f"CategoryEncoding: output_mode must be 'multi_hot', 'one_hot' or 'count', got "
                             f"{output_mode!r}")
        if num_tokens is None:
            raise ValueError("CategoryEncoding: num_tokens must be set; if the number of categories is not known "
                             "beforehand, use an IntegerLookup layer instead")
        if num_tokens < 1:
            raise ValueError(f"CategoryEncoding: num_tokens must be >= 1, got {num_tokens}")
        if sparse:
            raise ValueError("CategoryEncoding: sparse=True is not supported (engine has no sparse tensors)")
        self.num_tokens = int(num_tokens)
        self.output_mode = output_mode
        self.sparse = False

    def call(self, inputs, count_weights=None):
        if count_weights is not None:
            if self.output_mode != "count":
                raise ValueError("CategoryEncoding: count_weights is used only with output_mode='count'; got "
                                 f"output_mode={self.output_mode!r}")
            count_weights = to_numpy(count_weights)
        return _encoding.encode(to_numpy(inputs), self.output_mode, self.num_tokens, self.dtype,
                                count_weights=count_weights)

    def compute_output_shape(self, input_shape):
        return _encoding.encoded_shape(input_shape, self.output_mode, self.num_tokens)

    def get_config(self):
        return {**super().get_config(), "num_tokens": self.num_tokens, "output_mode": self.output_mode}


register_builtins("layers", globals())  # loadable from .keras configs by class name
