"""Embedding: integer ids to dense vectors."""
import numpy as np

from engine import constraints, initializers, ops, regularizers
from engine.dtypes import standardize_dtype
from engine.layers.base import Layer
from engine.layers.lora import LoRAMixin, LoRAWeight, refuse_quantization
from engine.ops.embedding import embedding_lookup, ids_array
from engine.saving.registry import register_builtins


class Embedding(LoRAMixin, Layer):
    """Turns non-negative integer ids into dense vectors of a fixed size.

    An input of shape `(batch, ...)` of ids in `[0, input_dim)` gives an output of shape
    `(batch, ..., output_dim)`, each id replaced by its row of the `embeddings` matrix.

    Args:
        input_dim: positive integer, the size of the vocabulary (the largest id plus 1).
        output_dim: positive integer, the size of each embedding vector.
        embeddings_initializer: initializer of the embeddings matrix (default `"uniform"`).
        embeddings_regularizer: optional regularizer applied to the embeddings matrix.
        embeddings_constraint: optional constraint applied to the embeddings matrix.
        mask_zero: whether id 0 is a padding value to be masked out by later layers
            (default `False`). If `True`, id 0 cannot be used for a real token, so `input_dim`
            should be the vocabulary size plus 1.
        weights: optional list holding an initial embeddings matrix of shape
            `(input_dim, output_dim)`, set when the layer is built.
        lora_rank: optional positive integer: when set, the layer is built with LoRA enabled at
            this rank (see `enable_lora`): the embeddings are frozen and the layer looks ids up in
            `embeddings + (lora_alpha / lora_rank) * lora_embeddings_a @ lora_embeddings_b`.
        lora_alpha: optional scale numerator of the LoRA update (default `lora_rank`).
        quantization_config: must be `None` (engine has no quantized kernels; anything else
            raises a ValueError).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    embeddings = LoRAWeight()
    _lora_weight = "embeddings"
    _plan_traceable = True   # audited for step plans: its lookup checks the ids inside the op

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, lora_rank=None, lora_alpha=None,
                 quantization_config=None, **kwargs):
        kwargs.pop("input_length", None)  # Keras 2 argument, accepted and ignored as Keras 3 does
        super().__init__(**kwargs)
        refuse_quantization("Embedding", quantization_config)
        self._init_lora(lora_rank, lora_alpha)
        if int(input_dim) <= 0 or int(output_dim) <= 0:
            raise ValueError(f"Embedding: input_dim and output_dim must be positive, got {input_dim}, {output_dim}")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.mask_zero = mask_zero
        self.supports_masking = mask_zero
        self._produces_mask = mask_zero
        self._input_dtype = "int32"
        self._initial_weights = weights

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                          initializer=self.embeddings_initializer,
                                          regularizer=self.embeddings_regularizer,
                                          constraint=self.embeddings_constraint, name="embeddings")
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None
        self._build_lora()

    def _convert(self, x):
        return x  # ids keep their integer type; the layer's dtype is that of its output

    def call(self, inputs):
        # The lookup checks the ids (in the kernel, naming this layer), so a step plan replaying
        # the op checks every batch's; float ids are truncated by a recorded cast (as Keras casts
        # them), which a replay repeats.
        if getattr(inputs, "dtype", None) is not None and np.dtype(inputs.dtype).kind == "f":
            inputs = ops.cast(inputs, "int64")
        return embedding_lookup(self.embeddings, ids_array(inputs), layer=self.name)

    def compute_mask(self, inputs, previous_mask=None):
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def get_config(self):
        config = super().get_config()
        config.update({"input_dim": self.input_dim, "output_dim": self.output_dim,
                       "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
                       "mask_zero": self.mask_zero, "quantization_config": None, **self._lora_config()})
        return config


class ReversibleEmbedding(Embedding):
    """An Embedding that can also run backwards: `layer(ids)` looks ids up as Embedding does, and
    `layer(vectors, reverse=True)` projects (..., output_dim) vectors to (..., input_dim) logits
    through the transposed embeddings (or a separate `reverse_embeddings` matrix), as language
    models tie their input and output embeddings.

    Args:
        input_dim: positive integer, the size of the vocabulary.
        output_dim: positive integer, the size of each embedding vector.
        tie_weights: whether the reverse projection uses the transposed embeddings (default
            `True`); `False` adds a trainable `reverse_embeddings` matrix `(output_dim, input_dim)`.
        embeddings_initializer, embeddings_regularizer, embeddings_constraint, mask_zero: as
            Embedding's.
        reverse_dtype: optional dtype both operands of the reverse projection are cast to.
        logit_soft_cap: optional positive number c: reverse logits become `c * tanh(logits / c)`.
        **kwargs: Embedding's other arguments (`lora_rank`, `name`, `dtype`, ...).
    """

    def __init__(self, input_dim, output_dim, tie_weights=True, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False, reverse_dtype=None,
                 logit_soft_cap=None, **kwargs):
        super().__init__(input_dim, output_dim, embeddings_initializer=embeddings_initializer,
                         embeddings_regularizer=embeddings_regularizer, embeddings_constraint=embeddings_constraint,
                         mask_zero=mask_zero, **kwargs)
        if logit_soft_cap is not None and not logit_soft_cap > 0:
            raise ValueError(f"ReversibleEmbedding: logit_soft_cap must be None or a positive number, got "
                             f"{logit_soft_cap!r}")
        self.tie_weights = bool(tie_weights)
        self.reverse_dtype = None if reverse_dtype is None else standardize_dtype(reverse_dtype)
        self.logit_soft_cap = logit_soft_cap

    def build(self, input_shape=None):
        super().build(input_shape)
        if not self.tie_weights:
            self.reverse_embeddings = self.add_weight(shape=(self.output_dim, self.input_dim),
                                                      initializer=self.embeddings_initializer,
                                                      name="reverse_embeddings")

    def _convert(self, x):
        # ids keep their integer type; reverse inputs (floats) take the layer's dtype as usual.
        if getattr(x, "dtype", None) is not None and np.dtype(x.dtype).kind == "f":
            return Layer._convert(self, x)
        return super()._convert(x)

    def call(self, inputs, reverse=False):
        if not reverse:
            return super().call(inputs)
        if inputs.shape[-1] != self.output_dim:
            raise ValueError(f"Layer \"{self.name}\" (ReversibleEmbedding): reverse=True takes vectors of size "
                             f"output_dim={self.output_dim} on the last axis, got shape {tuple(inputs.shape)}")
        kernel = ops.transpose(self.embeddings) if self.tie_weights else self.reverse_embeddings
        if self.reverse_dtype is not None:
            inputs, kernel = ops.cast(inputs, self.reverse_dtype), ops.cast(kernel, self.reverse_dtype)
        logits = ops.matmul(inputs, kernel)
        if self.logit_soft_cap is not None:
            cap = np.asarray(self.logit_soft_cap, dtype=logits.dtype)
            logits = ops.multiply(ops.tanh(ops.divide(logits, cap)), cap)
        return logits

    def compute_output_shape(self, input_shape, reverse=False):
        if reverse:
            return tuple(input_shape[:-1]) + (self.input_dim,)
        return super().compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, reverse=False):
        from engine.layers.keras_tensor import KerasTensor
        shape = self.compute_output_shape(tuple(inputs.shape), reverse=reverse)
        return KerasTensor(shape, self.reverse_dtype if reverse and self.reverse_dtype else self.dtype)

    def get_config(self):
        return {**super().get_config(), "tie_weights": self.tie_weights, "reverse_dtype": self.reverse_dtype,
                "logit_soft_cap": self.logit_soft_cap}


register_builtins("layers", globals())  # loadable from .keras configs by class name
