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


l1, l2, l1_l2 = L1, L2, L1L2


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
        cls = globals().get(identifier.get("class_name"))
        if not (isinstance(cls, type) and issubclass(cls, Regularizer)):
            raise ValueError(f"Unknown regularizer {identifier.get('class_name')!r}")
        return cls(**identifier.get("config", {}))
    if identifier is None or isinstance(identifier, Regularizer) or callable(identifier):
        return identifier
    names = {"l1": L1, "l2": L2, "l1_l2": L1L2}
    if isinstance(identifier, str) and identifier.lower() in names:
        return names[identifier.lower()]()
    raise ValueError(f"Unknown regularizer {identifier!r}. Known: l1, l2, l1_l2")


register_builtins("regularizers", globals())  # loadable from .keras configs by class name
