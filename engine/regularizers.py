"""Weight regularizers (keras.regularizers): penalties added to the training loss."""
from engine import ops


class Regularizer:
    def __call__(self, x):
        raise NotImplementedError

    def get_config(self):
        return {}


class L1L2(Regularizer):
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
    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2


def get(identifier):
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
