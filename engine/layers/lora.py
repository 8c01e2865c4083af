"""Low-rank adaptation (LoRA) of a layer's main weight, as Keras 3's Dense, EinsumDense and
Embedding do it: the weight W of shape (..., n) is frozen and two trainable factors are added,
a of shape (..., rank) and b of shape (rank, n); the layer then computes with
W + (lora_alpha / lora_rank) * (a @ b).  b starts at zero, so enabling LoRA changes no output.

A layer saves as if it had no adapters (as Keras does): the merged weight in W's place, and on
loading the adapters are reset to zero, so files move between LoRA and plain layers both ways.
"""
import numpy as np

from engine import initializers, ops


class LoRAWeight:
    """The layer attribute holding the adapted weight (`kernel`, `embeddings`).

    Assigning stores the variable; reading gives the variable itself, or, once LoRA is enabled,
    the merged tensor W + (alpha / rank) * (a @ b) (what Keras's `layer.kernel` returns), so the
    layer's call and its users see the weight the layer computes with.
    """

    def __set_name__(self, owner, name):
        self.name = name
        self.slot = f"_lora_base_{name}"

    def __get__(self, layer, owner=None):
        if layer is None:
            return self
        base = layer.__dict__.get(self.slot)
        if base is None or not getattr(layer, "lora_enabled", False):
            return base
        a, b = getattr(layer, f"lora_{self.name}_a"), getattr(layer, f"lora_{self.name}_b")
        delta = ops.multiply(ops.matmul(a, b), np.asarray(layer.lora_alpha / layer.lora_rank, dtype=a.dtype))
        return ops.add(base, ops.cast(delta, base.dtype))

    def __set__(self, layer, value):
        layer.__dict__[self.slot] = value


class LoRAMixin:
    """enable_lora / lora_rank / lora_alpha for a layer whose adapted weight is the LoRAWeight
    attribute named by `_lora_weight` and constrained by `_lora_constraint_attr`."""

    _lora_weight = "kernel"

    def _init_lora(self, lora_rank, lora_alpha):
        if lora_rank is not None and (isinstance(lora_rank, bool) or not isinstance(lora_rank, (int, np.integer))
                                      or lora_rank < 1):
            raise ValueError(f"{type(self).__name__}: lora_rank must be a positive integer or None, got {lora_rank!r}")
        self.lora_rank = None if lora_rank is None else int(lora_rank)
        self.lora_alpha = lora_alpha if lora_alpha is not None else self.lora_rank
        self.lora_enabled = False

    def _base_weight(self):
        return self.__dict__[f"_lora_base_{self._lora_weight}"]

    def _build_lora(self):
        """Called at the end of build: a layer constructed with lora_rank gets its adapters."""
        if self.lora_rank:
            self.enable_lora(self.lora_rank, lora_alpha=self.lora_alpha)

    def enable_lora(self, rank, lora_alpha=None, a_initializer="he_uniform", b_initializer="zeros"):
        """Freeze the layer's weight and add the trainable low-rank factors `lora_<weight>_a`
        (the weight's shape with its last axis replaced by `rank`) and `lora_<weight>_b`
        `(rank, last axis)`; the layer then computes with weight + (lora_alpha / rank) * a @ b.

        Args:
            rank: positive integer, the rank of the update.
            lora_alpha: the update's scale numerator (default `rank`, a scale of 1).
            a_initializer: initializer of the first factor (default `"he_uniform"`).
            b_initializer: initializer of the second factor (default `"zeros"`, so the layer's
                outputs do not change when LoRA is enabled).
        """
        name = type(self).__name__
        if getattr(self, f"{self._lora_weight}_constraint", None) is not None:
            raise ValueError(f"{name}: LoRA cannot be enabled on a layer with a {self._lora_weight}_constraint "
                             f"(the merged weight is never constrained); construct it without one")
        if not self.built:
            raise ValueError(f"{name}: enable_lora needs a built layer; call the layer (or build it) first")
        if self.lora_enabled:
            raise ValueError(f"{name}: LoRA is already enabled on layer \"{self.name}\"; it can be enabled once")
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValueError(f"{name}: enable_lora's rank must be a positive integer, got {rank!r}")
        base = self._base_weight()
        # Keras keeps the factors in float32 (or the layer's own wider float) against under/overflow.
        dtype = base.dtype if np.dtype(base.dtype).itemsize >= 4 else np.float32
        regularizer = getattr(self, f"{self._lora_weight}_regularizer", None)
        setattr(self, f"lora_{self._lora_weight}_a",
                self.add_weight(shape=tuple(base.shape[:-1]) + (int(rank),), initializer=initializers.get(a_initializer),
                                dtype=dtype, regularizer=regularizer, name=f"lora_{self._lora_weight}_a"))
        setattr(self, f"lora_{self._lora_weight}_b",
                self.add_weight(shape=(int(rank), base.shape[-1]), initializer=initializers.get(b_initializer),
                                dtype=dtype, regularizer=regularizer, name=f"lora_{self._lora_weight}_b"))
        base.trainable = False
        self.lora_enabled = True
        self.lora_rank = int(rank)
        self.lora_alpha = lora_alpha if lora_alpha is not None else int(rank)
        # The saver asks a layer for these two methods; only a LoRA layer stores merged arrays.
        self.save_own_variables = self._save_merged
        self.load_own_variables = self._load_merged

    # The frozen weight stays first in `weights` (Keras's order) but leaves the trainable ones.
    @property
    def trainable_weights(self):
        weights = super().trainable_weights
        return [w for w in weights if w.trainable] if self.lora_enabled else weights

    @property
    def non_trainable_weights(self):
        weights = super().non_trainable_weights
        if self.lora_enabled and self.trainable:
            frozen = self._base_weight()
            weights = [frozen] + [w for w in weights if w is not frozen]
        return weights

    def _saved_variables(self):
        """The variables a file holds for this layer, without adapters: the weight, then the rest
        of the layer's own non-LoRA weights (the bias)."""
        adapters = {id(getattr(self, f"lora_{self._lora_weight}_{s}")) for s in "ab"}
        return [w for w in self._trainable_weights_list + self._non_trainable_weights_list if id(w) not in adapters]

    def _save_merged(self, store):
        for i, v in enumerate(self._saved_variables()):
            value = getattr(self, self._lora_weight) if v is self._base_weight() else v
            store[str(i)] = np.asarray(value)

    def _load_merged(self, store):
        variables = self._saved_variables()
        if len(store) != len(variables):
            raise ValueError(f"{type(self).__name__} \"{self.name}\": the file holds {len(store)} arrays for this "
                             f"layer but it saves {len(variables)} (its weight and bias, without LoRA adapters); "
                             "the file does not belong to this model")
        for i, v in enumerate(variables):
            value = np.asarray(store[str(i)])
            if value.shape != tuple(v.shape):
                raise ValueError(f"{type(self).__name__} \"{self.name}\": array {i} of the file has shape "
                                 f"{value.shape} but weight {v.path} has shape {tuple(v.shape)}")
        for i, v in enumerate(variables):
            v.assign(store[str(i)])
        # The file holds the merged weight: the adapters restart from zero, as in Keras.
        for s in "ab":
            factor = getattr(self, f"lora_{self._lora_weight}_{s}")
            factor.assign(np.zeros(factor.shape, factor.dtype))

    def _lora_config(self):
        """lora_rank / lora_alpha, written (as Keras does) only when set."""
        return {"lora_rank": self.lora_rank, "lora_alpha": self.lora_alpha} if self.lora_rank else {}


def refuse_quantization(layer_name, quantization_config):
    """Keras's Dense, EinsumDense and Embedding take a quantization_config; engine computes in
    floating point only, so anything but None is refused (not silently run unquantized)."""
    if quantization_config is not None:
        raise ValueError(f"{layer_name}: quantization_config={quantization_config!r} is not supported (engine has "
                         "no quantized kernels); leave it None")
