"""Attention layers: MultiHeadAttention, Attention (dot / concat scores) and AdditiveAttention.

MultiHeadAttention keeps Keras's weights (query/key/value kernels (dim, heads, key_dim) with
biases (heads, key_dim), output kernel (heads, value_dim, *output_shape)) in Keras's order and
runs the attention itself in the fused kernel (engine.ops.attention) unless the probabilities
are needed as a tensor (return_attention_scores, or dropout while training).
"""
import numpy as np

from engine import initializers, ops
from engine import random as engine_random
from engine.layers._weight_settings import set_kernel_and_bias_settings
from engine.layers.base import Layer
from engine.layers.einsum_dense import fan_aware
from engine.ops import attention as attention_ops
from engine.saving.registry import register_builtins


def _mask_of(x):
    return getattr(x, "_keras_mask", None)


def _zero_unseeing_queries(out_seq, mask):
    """The fused attention's output (B, T, heads, dv) with the rows of queries that see no key
    set to zero.

    A query whose keys are all masked gets a uniform average of the values from the fused kernel
    (as Keras's ops.dot_product_attention on JAX), but zero from Keras's explicit softmax path,
    which its MultiHeadAttention takes whenever the layer has dropout or attends over more than
    one axis (projected queries of rank != 4).  Engine runs the fused kernel there too and zeroes
    those rows, so its numbers are Keras's on every path.
    """
    sees = np.asarray(mask).any(axis=-1)                   # (B or 1, heads or 1, T)
    if sees.all():
        return out_seq
    factor = np.ascontiguousarray(sees.transpose(0, 2, 1)[..., None]).astype(out_seq.dtype)
    return ops.multiply(out_seq, factor)


class _HeadProjection(Layer):
    """x (..., *in_dims) -> (..., *out_dims) with a kernel (*in_dims, *out_dims) and a bias
    (*out_dims): the fixed-shape projections of MultiHeadAttention (Keras's EinsumDense with
    the equations MultiHeadAttention builds), run as one dense product."""

    def __init__(self, in_dims, out_dims, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                 bias_regularizer, kernel_constraint, bias_constraint, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.in_dims, self.out_dims = tuple(in_dims), tuple(out_dims)
        n_in, n_all = len(self.in_dims), len(self.in_dims) + len(self.out_dims)
        # Keras's EinsumDense tells a variance-scaling initializer which axes are fan-in and fan-out.
        kernel_initializer = fan_aware(initializers.get(kernel_initializer), range(n_in), range(n_in, n_all))
        self.kernel = self.add_weight(shape=self.in_dims + self.out_dims, initializer=kernel_initializer,
                                      regularizer=kernel_regularizer, constraint=kernel_constraint,
                                      name="kernel")
        self.bias = self.add_weight(shape=self.out_dims, initializer=bias_initializer,
                                    regularizer=bias_regularizer, constraint=bias_constraint,
                                    name="bias") if use_bias else None
        self.activation = activation
        self.built = True

    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    def call(self, inputs):
        n_in = len(self.in_dims)
        lead = tuple(inputs.shape[:inputs.ndim - n_in])
        fan_in, fan_out = int(np.prod(self.in_dims)), int(np.prod(self.out_dims))
        # The dense op folds the leading axes itself: a reshape only where several axes contract.
        x = inputs if n_in == 1 else ops.reshape(inputs, lead + (fan_in,))
        kernel = self.kernel if len(self.kernel.shape) == 2 else ops.reshape(self.kernel, (fan_in, fan_out))
        bias = None if self.bias is None else \
            (self.bias if len(self.bias.shape) == 1 else ops.reshape(self.bias, (fan_out,)))
        y = ops.nn.dense(x, kernel, bias, activation=self.activation)
        return y if len(self.out_dims) == 1 else ops.reshape(y, lead + self.out_dims)


class MultiHeadAttention(Layer):
    """Multi-head attention (Vaswani et al.), as keras.layers.MultiHeadAttention.

    Args:
        num_heads: number of attention heads.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to key_dim.
        dropout: dropout rate on the attention probabilities (while training).
        use_bias: whether the projections have biases.
        output_shape: the output's trailing shape (an int or a tuple); defaults to the query's
            last dimension.
        attention_axes: the axes attention runs over (default: every axis but the batch and
            the features).
        sliding_window: optional positive int: query i sees only keys within
            sliding_window - 1 positions of it.
        flash_attention: None / False / True: engine's fused kernel is always the blocked
            (flash-style) one; True, as in Keras, refuses return_attention_scores and dropout.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: for the projections' weights.
        activity_regularizer: regularizer of the layer's output.
        use_gate: whether a sigmoid projection of the query gates the attention output.
        seed: seed of the dropout.

    Call arguments:
        query (B, T, dim), value (B, S, dim), key (B, S, dim) (optional, defaults to value),
        attention_mask (boolean, broadcastable to (B, T, S)), return_attention_scores,
        training, use_causal_mask.  Masks carried by query, value and key are applied.
    """

    # Audited for step plans (models/plan.py): differentiable ops on the projections and the
    # attention kernel; a mask's values are read in numpy (which the trace notices: the call is
    # then one opaque step), and its dropout draws its mask inside the op.
    _plan_traceable = True

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, output_shape=None,
                 attention_axes=None, sliding_window=None, flash_attention=None,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None,
                 bias_regularizer=None, activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 use_gate=False, seed=None, **kwargs):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"MultiHeadAttention: {name} must be a positive integer, got {value!r}")
        if value_dim is not None and (not isinstance(value_dim, (int, np.integer)) or value_dim <= 0):
            raise ValueError(f"MultiHeadAttention: value_dim must be None or a positive integer, got {value_dim!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout!r}")
        if sliding_window is not None and (not isinstance(sliding_window, int) or sliding_window <= 0):
            raise ValueError(f"MultiHeadAttention: sliding_window must be None or a positive integer, got "
                             f"{sliding_window!r}")
        self.num_heads, self.key_dim = int(num_heads), int(key_dim)
        self.value_dim = int(value_dim) if value_dim is not None else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        if output_shape is not None:
            output_shape = (int(output_shape),) if isinstance(output_shape, (int, np.integer)) \
                else tuple(int(d) for d in output_shape)
        self._output_shape = output_shape
        if isinstance(attention_axes, (int, np.integer)):
            attention_axes = (int(attention_axes),)
        self.attention_axes = None if attention_axes is None else tuple(int(a) for a in attention_axes)
        self.sliding_window = sliding_window
        self.flash_attention = flash_attention
        if flash_attention and self.dropout > 0.0:      # as Keras: flash attention has no dropout
            raise ValueError(f"Layer {self.name!r} (MultiHeadAttention): dropout is not supported with "
                             f"flash_attention=True; set dropout=0.0 or flash_attention=None")
        set_kernel_and_bias_settings(self, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                                     kernel_constraint, bias_constraint)
        self.use_gate = bool(use_gate)
        self.seed = seed
        self._rng = engine_random.make_generator(seed) if seed is not None else None
        self.supports_masking = True

    # -- building ---------------------------------------------------------------------------
    def _maybe_build(self, input_shape):
        """Weights need the value's shape too: built on the first call (see _build_for)."""

    def build(self, query_shape, value_shape=None, key_shape=None):
        """Create the projections for inputs of these shapes (Keras's build signature)."""
        query_shape = tuple(query_shape)
        value_shape = query_shape if value_shape is None else tuple(value_shape)
        key_shape = value_shape if key_shape is None else tuple(key_shape)
        if value_shape[1:-1] != key_shape[1:-1]:
            raise ValueError(f"Layer \"{self.name}\" (MultiHeadAttention): value and key must agree on every "
                             f"axis but the last; got value shape {value_shape} and key shape {key_shape}")
        for what, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) < 3 or shape[-1] is None:
                raise ValueError(f"Layer \"{self.name}\" (MultiHeadAttention): {what} must have rank >= 3 "
                                 f"(batch, positions..., features) with a known feature size, got {shape}")
        rank = len(query_shape) + 1               # of the projected (..., heads, depth) tensors
        axes = self.attention_axes if self.attention_axes is not None else tuple(range(1, rank - 2))
        self._axes = tuple(sorted(a % (rank - 1) for a in axes))
        if any(a == 0 or a >= rank - 2 for a in self._axes):
            raise ValueError(f"Layer \"{self.name}\" (MultiHeadAttention): attention_axes={self.attention_axes} "
                             f"must name axes between the batch and the feature axis of a rank "
                             f"{len(query_shape)} query")
        common = dict(kernel_initializer=self.kernel_initializer, bias_initializer=self.bias_initializer,
                      kernel_regularizer=self.kernel_regularizer, bias_regularizer=self.bias_regularizer,
                      kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint,
                      use_bias=self.use_bias, dtype=self.dtype)
        heads, kv_heads = self.num_heads, self._kv_heads()
        self._query_dense = _HeadProjection((query_shape[-1],), (heads, self.key_dim), name="query", **common)
        self._key_dense = _HeadProjection((key_shape[-1],), (kv_heads, self.key_dim), name="key", **common)
        if self.use_gate:
            self._gate_dense = _HeadProjection((query_shape[-1],), (heads, self.value_dim), name="gate",
                                               activation="sigmoid", **common)
        self._value_dense = _HeadProjection((value_shape[-1],), (kv_heads, self.value_dim), name="value",
                                            **common)
        out = self._output_shape or (query_shape[-1],)
        self._output_dense = _HeadProjection((heads, self.value_dim), out, name="attention_output", **common)
        self.built = True

    def _kv_heads(self):
        """The number of key / value heads (GroupedQueryAttention shares each among several queries)."""
        return self.num_heads

    @property
    def query_dense(self):
        return self._query_dense

    @property
    def key_dense(self):
        return self._key_dense

    @property
    def value_dense(self):
        return self._value_dense

    @property
    def output_dense(self):
        return self._output_dense

    # -- calling ----------------------------------------------------------------------------
    def compute_output_shape(self, query_shape, value_shape=None, key_shape=None):
        query_shape = tuple(query_shape)
        if self._output_shape:
            return query_shape[:-1] + self._output_shape
        return query_shape

    def compute_output_spec(self, query, value=None, key=None, attention_mask=None, return_attention_scores=False,
                            training=None, use_causal_mask=False, **kwargs):
        from engine.layers.keras_tensor import KerasTensor
        if not self.built:
            self.build(query.shape, (value if value is not None else query).shape,
                       None if key is None else key.shape)
        out = KerasTensor(self.compute_output_shape(query.shape), self.dtype)
        if not return_attention_scores:
            return out
        value = query if value is None else value
        qa = [query.shape[a] for a in self._axes]
        ka = [value.shape[a] for a in self._axes]
        lead = [d for i, d in enumerate(query.shape[:-1]) if i not in self._axes]
        return out, KerasTensor(tuple(lead) + (self.num_heads,) + tuple(qa) + tuple(ka), self.dtype)

    def _attention_mask(self, query, value, masks, attention_mask, use_causal_mask):
        """The boolean (B, T..., S...) mask from the query / value / key masks, attention_mask, the
        causal and sliding-window masks (None when nothing is masked): Keras's merge by AND."""
        q_mask, v_mask, k_mask = masks
        single = self._axes == (1,)
        pieces = []
        if q_mask is not None:
            pieces.append(np.asarray(q_mask, dtype=bool)[..., None])
        for m in (v_mask, k_mask):
            if m is not None:
                pieces.append(np.expand_dims(np.asarray(m, dtype=bool), -2))
        if (use_causal_mask or self.sliding_window is not None) and not single:
            raise ValueError(f"Layer \"{self.name}\" (MultiHeadAttention): use_causal_mask and sliding_window "
                             f"need attention over axis 1 only, got attention_axes={self._axes}")
        T, S = query.shape[1], value.shape[1]
        if use_causal_mask:
            pieces.append(attention_ops.causal_mask(T, S)[None])
        if self.sliding_window is not None:
            band = np.abs(np.arange(T)[:, None] - np.arange(S)[None, :]) < self.sliding_window
            pieces.append(band[None])
        if attention_mask is not None:
            pieces.append(np.asarray(attention_mask).astype(bool))
        if not pieces:
            return None
        mask = pieces[0]
        for p in pieces[1:]:
            mask = mask & p
        return mask

    def _to_sequences(self, x):
        """(B, ..., heads, depth) with attention axes self._axes -> (B', L, heads, depth): the other
        axes fold into the batch, the attention axes into one length (attention over several axes
        is attention over their product)."""
        rank = x.ndim
        lead = [a for a in range(1, rank - 2) if a not in self._axes]
        perm = [0] + lead + list(self._axes) + [rank - 2, rank - 1]
        if perm != list(range(rank)):
            x = ops.transpose(x, perm)
        shape = x.shape
        n_lead = 1 + len(lead)
        batch = int(np.prod(shape[:n_lead]))
        length = int(np.prod(shape[n_lead:rank - 2]))
        return ops.reshape(x, (batch, length) + tuple(shape[rank - 2:])), perm, shape

    def _from_sequences(self, y, perm, shape):
        y = ops.reshape(y, tuple(shape[:-1]) + (y.shape[-1],))
        if perm != list(range(len(perm))):
            y = ops.transpose(y, list(np.argsort(perm)))
        return y

    def _mask_for_sequences(self, mask, q_shape, k_shape):
        """The merged mask (broadcastable to (<batch dims>, heads, <T dims>, <S dims>) once the head
        axis is inserted) as (B', heads or 1, T, S) for the folded layout."""
        if mask is None:
            return None
        nt = len(self._axes)
        lead_q = [d for i, d in enumerate(q_shape[:-2]) if i not in self._axes]
        t_dims = [q_shape[a] for a in self._axes]
        s_dims = [k_shape[a] for a in self._axes]
        m = np.asarray(mask, dtype=bool)
        full = len(lead_q) + 1 + 2 * nt
        if m.ndim < 2 * nt or m.ndim > full:
            raise ValueError(f"Layer \"{self.name}\" (MultiHeadAttention): an attention mask of shape {m.shape} does "
                             f"not fit query attention axes {t_dims} and key attention axes {s_dims}")
        if m.ndim < full:
            # Keras inserts the missing axes (the head axis first) just before the query attention axes.
            at = m.ndim - 2 * nt
            m = m.reshape(m.shape[:at] + (1,) * (full - m.ndim) + m.shape[at:])
        # Keep a mask shared by the whole batch (a causal one) at batch size 1, and a head axis of
        # 1 as it is: the kernel broadcasts both, so no (B, H, T, S) copy is made.
        lead = [1] * len(lead_q) if all(d == 1 for d in m.shape[:len(lead_q)]) else list(lead_q)
        heads = m.shape[len(lead_q)]
        target = tuple(lead) + (heads,) + tuple(t_dims) + tuple(s_dims)
        try:
            m = np.broadcast_to(m, target)
        except ValueError:
            raise ValueError(f"Layer \"{self.name}\" (MultiHeadAttention): the attention mask of shape "
                             f"{np.shape(mask)} does not broadcast to (batch..., heads, T..., S...) = "
                             f"{tuple(lead_q) + (self.num_heads,) + tuple(t_dims) + tuple(s_dims)}") from None
        return m.reshape(int(np.prod(lead)), heads, int(np.prod(t_dims)), int(np.prod(s_dims)))

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False):
        if self.flash_attention and return_attention_scores:
            raise ValueError(f"Layer \"{self.name}\" (MultiHeadAttention): return_attention_scores=True needs the "
                             f"attention matrix, which flash_attention=True never forms; construct the layer with "
                             f"flash_attention=None or False to get the scores")
        value = self._convert(value)
        key_given = key is not None and key is not value
        key = self._convert(key) if key_given else value
        # Masks: the explicit arguments, else the ones the tensors carry (a key that is the value
        # adds no mask of its own, as in Keras).
        masks = (query_mask if query_mask is not None else _mask_of(query),
                 value_mask if value_mask is not None else _mask_of(value),
                 (key_mask if key_mask is not None else _mask_of(key)) if key_given else None)
        if not self.built:
            self.build(query.shape, value.shape, key.shape)
        q_mask = masks[0]
        merged = self._attention_mask(query, value, masks, attention_mask, use_causal_mask)
        gate = self._gate_dense(query) if self.use_gate else None
        if query._value is value._value and key is value:
            q, k, v = self._self_projections(query)
        else:
            q, k, v = self._query_dense(query), self._key_dense(key), self._value_dense(value)
        q_seq, perm, q_moved = self._to_sequences(q)
        k_seq, _, k_moved = self._to_sequences(k)
        v_seq, _, _ = self._to_sequences(v)
        mask = self._mask_for_sequences(merged, q.shape, k.shape)
        scale = 1.0 / np.sqrt(self.key_dim)
        dropping = bool(training) and self.dropout > 0
        scores = None
        if return_attention_scores or dropping:
            if self._kv_heads() != self.num_heads:
                # Grouped heads: key / value head j serves query heads j*r .. j*r + r - 1, as Keras repeats them.
                repeats = self.num_heads // self._kv_heads()
                k_seq, v_seq = ops.repeat(k_seq, repeats, axis=2), ops.repeat(v_seq, repeats, axis=2)
            # Keras's explicit path: its Softmax zeroes masked probabilities.
            probs = attention_ops.attention_probabilities(q_seq, k_seq, scale, mask, masked_value="zero")
            weights = ops.dropout(probs, self.dropout, rng=self._rng) \
                if dropping else probs
            out_seq = ops.transpose(ops.matmul(weights, ops.transpose(v_seq, (0, 2, 1, 3))), (0, 2, 1, 3))
            if return_attention_scores:
                scores = self._scores_layout(probs, q.shape, k.shape)
        else:
            out_seq = attention_ops.dot_product_attention(q_seq, k_seq, v_seq, mask=mask, scale=scale)
            if mask is not None and (self.dropout > 0 or len(q.shape) != 4):
                out_seq = _zero_unseeing_queries(out_seq, mask)
        out = self._from_sequences(out_seq, perm, q_moved[:-1] + (self.value_dim,))
        if gate is not None:
            out = ops.multiply(out, gate)
        out = self._output_dense(out)
        if q_mask is not None:
            out._keras_mask = q_mask
        return (out, scores) if return_attention_scores else out

    def _self_projections(self, x):
        """Self-attention's query, key and value projections of one input, as one GEMM."""
        dense = (self._query_dense, self._key_dense, self._value_dense)
        kernels = [ops.reshape(p.kernel, (p.kernel.shape[0], -1)) for p in dense]
        biases = [None if p.bias is None else ops.reshape(p.bias, (-1,)) for p in dense]
        outs = attention_ops.joint_projection(x, kernels, biases)
        return [ops.reshape(o, tuple(x.shape[:-1]) + p.out_dims) for o, p in zip(outs, dense)]

    def _scores_layout(self, probs, q_shape, k_shape):
        """(B', heads, T, S) probabilities as Keras returns them: (<batch dims>, heads, <T dims>, <S dims>)."""
        lead = [d for i, d in enumerate(q_shape[:-2]) if i not in self._axes]
        t_dims = [q_shape[a] for a in self._axes]
        s_dims = [k_shape[a] for a in self._axes]
        return ops.reshape(probs, tuple(lead) + (self.num_heads,) + tuple(t_dims) + tuple(s_dims))

    def compute_mask(self, inputs, previous_mask=None):
        return previous_mask

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_heads": self.num_heads, "key_dim": self.key_dim, "value_dim": self.value_dim,
            "dropout": self.dropout, "use_bias": self.use_bias, "use_gate": self.use_gate,
            "output_shape": self._output_shape, "attention_axes": self.attention_axes,
            "sliding_window": self.sliding_window, "seed": self.seed,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
        })
        return config


class GroupedQueryAttention(MultiHeadAttention):
    """Grouped-query attention (Ainslie et al., 2023), as keras.layers.GroupQueryAttention:
    multi-head attention whose `num_query_heads` query heads share `num_key_value_heads` key and
    value heads, query head i reading key / value head i // (num_query_heads / num_key_value_heads).

    Weights (Keras's order): query (dim, num_query_heads, head_dim) and bias, key and value
    (dim, num_key_value_heads, head_dim) and biases, the gate's between them when use_gate, and
    the output (num_query_heads, head_dim, dim) and bias.

    Args:
        head_dim: size of each head (query, key and value).
        num_query_heads: number of query heads.
        num_key_value_heads: number of key and value heads; must divide num_query_heads.
        dropout: dropout rate on the attention probabilities (while training).
        use_bias: whether the projections have biases.
        sliding_window: optional positive int: query i sees only keys within
            sliding_window - 1 positions of it.
        flash_attention: as MultiHeadAttention's.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: for the projections' weights.
        activity_regularizer: regularizer of the layer's output.
        use_gate: whether a sigmoid projection of the query gates the attention output.
        seed: seed of the dropout.

    Call arguments: as MultiHeadAttention's (query (B, T, dim), value (B, S, dim), key,
    query_mask, value_mask, key_mask, attention_mask, return_attention_scores, training,
    use_causal_mask); the output has the query's shape.
    """

    def __init__(self, head_dim, num_query_heads, num_key_value_heads, dropout=0.0, use_bias=True,
                 sliding_window=None, flash_attention=None, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, use_gate=False, seed=None, **kwargs):
        for name, value in (("head_dim", head_dim), ("num_query_heads", num_query_heads),
                            ("num_key_value_heads", num_key_value_heads)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"GroupQueryAttention: {name} must be a positive integer, got {value!r}")
        if num_query_heads % num_key_value_heads:
            raise ValueError(f"GroupQueryAttention: num_query_heads ({num_query_heads}) must be a multiple of "
                             f"num_key_value_heads ({num_key_value_heads})")
        super().__init__(num_query_heads, head_dim, dropout=dropout, use_bias=use_bias,
                         sliding_window=sliding_window, flash_attention=flash_attention,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, use_gate=use_gate, seed=seed, **kwargs)
        self.head_dim = int(head_dim)
        self.num_query_heads = int(num_query_heads)
        self.num_key_value_heads = int(num_key_value_heads)

    # Keras exports the class as layers.GroupQueryAttention and writes that name in configs, while
    # its file paths and default layer names come from the class's own name.
    _keras_api_name = "GroupQueryAttention"

    def _kv_heads(self):
        return self.num_key_value_heads

    def _h5_groups(self):
        # Keras's GroupQueryAttention has no public projection properties: its files keep the
        # projections under their private attribute names.
        return [("_" + sub.lstrip("_"), variables) for sub, variables in super()._h5_groups()]

    def get_config(self):
        config = super().get_config()
        for key in ("num_heads", "key_dim", "value_dim", "output_shape", "attention_axes"):
            config.pop(key)
        config.update({"head_dim": self.head_dim, "num_query_heads": self.num_query_heads,
                       "num_key_value_heads": self.num_key_value_heads})
        return config


GroupQueryAttention = GroupedQueryAttention


class Attention(Layer):
    """Dot-product (Luong-style) attention, as keras.layers.Attention.

    Args:
        use_scale: whether the scores are multiplied by a learned scalar `scale` (init 1).
        score_mode: "dot" (q . k) or "concat" (concat_score_weight * sum(tanh(scale * (q + k)))).
        dropout: dropout rate on the attention distribution (while training).
        seed: seed of the dropout.

    Call arguments:
        inputs: [query (B, Tq, dim), value (B, Tv, dim)] or [query, value, key].
        mask: optional [query_mask (B, Tq), value_mask (B, Tv)] (defaults to the inputs' masks).
        training, return_attention_scores, use_causal_mask.
    """

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if score_mode not in ("dot", "concat"):
            raise ValueError(f"{type(self).__name__}: score_mode must be 'dot' or 'concat', got {score_mode!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1), got {dropout!r}")
        self.use_scale = bool(use_scale)
        self.score_mode = score_mode
        self.dropout = float(dropout)
        self.seed = seed
        self._rng = engine_random.make_generator(seed) if seed is not None else None
        self.supports_masking = True

    def _check_inputs(self, inputs, mask=None):
        name = type(self).__name__
        if not isinstance(inputs, (list, tuple)) or not 2 <= len(inputs) <= 3:
            raise ValueError(f"Layer \"{self.name}\" ({name}) must be called on a list [query, value] or "
                             f"[query, value, key], got {type(inputs).__name__}")
        if mask is not None and (not isinstance(mask, (list, tuple)) or not 2 <= len(mask) <= 3):
            raise ValueError(f"Layer \"{self.name}\" ({name}): mask must be a list [query_mask, value_mask], "
                             f"got {mask!r:.100}")

    def _check_input(self, shapes):
        self._check_inputs(shapes)

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale") if self.use_scale else None
        self.concat_score_weight = self.add_weight(shape=(), initializer="ones", name="concat_score_weight") \
            if self.score_mode == "concat" else None
        self.built = True

    def _scores(self, query, key):
        if self.score_mode == "dot":
            scores = ops.matmul(query, ops.transpose(key, (0, 2, 1)) if key.ndim == 3 else
                                ops.transpose(key, tuple(range(key.ndim - 2)) + (key.ndim - 1, key.ndim - 2)))
            return scores if self.scale is None else ops.multiply(scores, self.scale)
        summed = ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3))
        if self.scale is not None:
            summed = ops.multiply(self.scale, summed)
        return ops.multiply(self.concat_score_weight, ops.sum(ops.tanh(summed), axis=-1))

    def call(self, inputs, mask=None, training=False, return_attention_scores=False, use_causal_mask=False):
        self._check_inputs(inputs, mask)
        inputs = [self._convert(t) for t in inputs]
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        q_mask = mask[0] if mask else None
        v_mask = mask[1] if mask else None
        scores = self._scores(q, k)
        visible = None if v_mask is None else np.asarray(v_mask, dtype=bool)[..., None, :]
        if use_causal_mask:
            causal = attention_ops.causal_mask(scores.shape[-2], scores.shape[-1])[None]
            visible = causal if visible is None else visible & causal
        if visible is not None:
            # Keras lowers the masked scores by 1e9 (not replaced): a row with no visible key
            # keeps the softmax of its own scores.
            scores = ops.where(visible, scores, ops.subtract(scores, np.asarray(1e9, scores.dtype)))
        weights = ops.softmax(scores, axis=-1)
        used = weights
        if training and self.dropout > 0:
            used = ops.dropout(weights, self.dropout, rng=self._rng)
        out = ops.matmul(used, v)
        if q_mask is not None:
            out = ops.where(np.asarray(q_mask, dtype=bool)[..., None], out, np.zeros((), out.dtype))
        return (out, weights) if return_attention_scores else out

    def compute_mask(self, inputs, previous_mask=None):
        if previous_mask is None or previous_mask[0] is None:
            return None
        return ops.convert_to_tensor(previous_mask[0])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (input_shape[1][-1],)

    def compute_output_spec(self, inputs, mask=None, return_attention_scores=False, training=None,
                            use_causal_mask=False):
        from engine.layers.keras_tensor import KerasTensor
        self._check_inputs(inputs, mask)
        q, v = inputs[0], inputs[1]
        k = inputs[2] if len(inputs) > 2 else v
        out = KerasTensor(self.compute_output_shape([q.shape, v.shape]), self.dtype)
        if return_attention_scores:
            return out, KerasTensor(tuple(q.shape[:-1]) + (k.shape[-2],), self.dtype)
        return out

    def get_config(self):
        config = super().get_config()
        config.update({"use_scale": self.use_scale, "score_mode": self.score_mode, "dropout": self.dropout,
                       "seed": self.seed})
        return config


class AdditiveAttention(Attention):
    """Additive (Bahdanau-style) attention, as keras.layers.AdditiveAttention: scores are
    sum(scale * tanh(q + k)) over the features, with a learned per-feature `scale` (glorot
    uniform) when use_scale is True.

    Args:
        use_scale: whether the learned per-feature scale is used.
        dropout: dropout rate on the attention distribution (while training).
        seed: seed of the dropout.
    """

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def build(self, input_shape):
        dim = input_shape[0][-1]
        self.scale = self.add_weight(shape=(dim,), initializer="glorot_uniform", name="scale") \
            if self.use_scale else None
        self.concat_score_weight = None
        self.built = True

    def _scores(self, query, key):
        t = ops.tanh(ops.add(ops.expand_dims(query, -2), ops.expand_dims(key, -3)))
        if self.scale is not None:
            t = ops.multiply(self.scale, t)
        return ops.sum(t, axis=-1)

    def get_config(self):
        config = super().get_config()
        del config["score_mode"]
        return config


register_builtins("layers", globals())  # loadable from .keras configs by class name
