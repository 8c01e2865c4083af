"""Weight regularizers (keras.regularizers): penalties added to the training loss."""
from engine import ops
from engine.saving.registry import register_builtins


class Regularizer:
    """Base class of weight regularizers.

    A regularizer is called on a weight tensor and returns a scalar penalty that is added to the
    training loss. Subclasses implement `__call__(x)` and `get_config()`.
    """

    def __call__(self, x):
        raise NotImplementedError

    def get_config(self):
        return {}


class L1L2(Regularizer):
    """Regularizer applying both an L1 and an L2 penalty.

    The penalty is `l1 * sum(abs(x)) + l2 * sum(square(x))`.

    Args:
        l1: the L1 regularization factor (default 0.0).
        l2: the L2 regularization factor (default 0.0).
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x):
        total = 0.0
        if self.l1:
            total = ops.add(total, ops.multiply(self.l1, ops.sum(ops.abs(x))))
        if self.l2:
            total = ops.add(total, ops.multiply(self.l2, ops.sum(ops.square(x))))
        return total

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """Regularizer applying an L1 penalty, `l1 * sum(abs(x))`.

    Args:
        l1: the L1 regularization factor (default 0.01).
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """Regularizer applying an L2 penalty, `l2 * sum(square(x))`.

    Args:
        l2: the L2 regularization factor (default 0.01).
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class OrthogonalRegularizer(Regularizer):
    """Regularizer pushing the rows (or columns) of a 2-D weight towards mutual orthogonality.

    The penalty is `factor * 0.5 * sum(|P - diag(P)|) / (n * (n - 1) / 2)` where `P` holds the
    dot products of the L2-normalized rows (`mode="rows"`) or columns (`mode="columns"`) and
    `n` is their number: `factor` times the mean absolute cosine between distinct pairs.

    Args:
        factor: the regularization factor (default 0.01).
        mode: `"rows"` (default) or `"columns"`: which vectors are made orthogonal. For a
            `Dense` kernel of shape `(input_dim, units)`, rows are the input features' weights.
    """

    def __init__(self, factor=0.01, mode="rows"):
        if mode not in ("rows", "columns"):
            raise ValueError(f"OrthogonalRegularizer: mode must be 'rows' or 'columns', got {mode!r}")
        self.factor, self.mode = float(factor), mode

    def __call__(self, x):
        if len(x.shape) != 2:
            raise ValueError(f"OrthogonalRegularizer: the weight must have rank 2, got shape {tuple(x.shape)}")
        vectors = x if self.mode == "rows" else ops.transpose(x)
        vectors = ops.normalize(vectors, axis=1)
        cosines = ops.matmul(vectors, ops.transpose(vectors))
        n = vectors.shape[0]
        off_diagonal = ops.multiply(cosines, 1.0 - ops.eye(n, dtype=cosines.dtype))
        pairs = n * (n - 1.0) / 2.0
        return ops.multiply(self.factor * 0.5 / pairs, ops.sum(ops.abs(off_diagonal)))

    def get_config(self):
        return {"factor": self.factor, "mode": self.mode}


l1, l2, l1_l2, orthogonal_regularizer = L1, L2, L1L2, OrthogonalRegularizer


def get(identifier):
    """Returns a regularizer for an identifier.

    Args:
        identifier: a config dict (`{"class_name": ..., "config": ...}`), one of the names
            `"l1"`, `"l2"` or `"l1_l2"` (giving the regularizer with default factors), a
            `Regularizer` or other callable (returned as is), or `None`.

    Raises:
        ValueError: if `identifier` cannot be interpreted.
    """
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if identifier is None or isinstance(identifier, Regularizer) or callable(identifier):
        return identifier
    names = {"l1": L1, "l2": L2, "l1_l2": L1L2}
    if isinstance(identifier, str) and identifier.lower() in names:
        return names[identifier.lower()]()
    raise ValueError(f"Unknown regularizer {identifier!r}. Known: l1, l2, l1_l2")


def serialize(regularizer):
    """Returns the Keras-format config dictionary of a regularizer.

    Args:
        regularizer: a `Regularizer` instance (built in or registered with
            `register_keras_serializable`).
    """
    from engine.saving.serialization import serialize_keras_object
    return serialize_keras_object(regularizer)


def deserialize(config, custom_objects=None):
    """Returns the regularizer a config dictionary describes.

    Args:
        config: a dictionary from `serialize` (or Keras's), with `class_name` and `config`.
        custom_objects: optional `{name: class}` for regularizers neither built in nor registered.

    Raises:
        ValueError: if the config names no known regularizer.
    """
    from engine.saving.serialization import deserialize_in_family
    return deserialize_in_family(config, "regularizers", Regularizer, custom_objects)


register_builtins("regularizers", globals())  # loadable from .keras configs by class name
