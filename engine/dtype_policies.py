"""keras.dtype_policies: the dtype a layer computes in and keeps its variables in.

engine's kernels compute in float32 and float64, so the policies it runs are those of one dtype
("float32", "float64", or a non-float dtype for layers such as lookups). The 16-bit and mixed
policies ("mixed_float16", "mixed_bfloat16", "float16", "bfloat16") can be named and read from
configs, but a layer refuses to be made with one and `set_dtype_policy` refuses it, with an
error saying so, rather than silently computing in another precision than Keras would.
"""
from engine.dtypes import standardize_dtype

_MIXED = {"mixed_float16": ("float16", "float32"), "mixed_bfloat16": ("bfloat16", "float32")}
_UNSUPPORTED_COMPUTE = ("float16", "bfloat16")
_global_policy = None       # set by set_dtype_policy; None: the policy of floatx()


class DTypePolicy:
    """A layer's dtypes: the one it computes in and the one its variables are kept in.

    Args:
        name: "float32", "float64" (or another dtype name), or Keras's "mixed_float16" /
            "mixed_bfloat16" (parsed, but not runnable in engine). Default: the global policy.
    """

    def __init__(self, name=None):
        if name is None:
            name = dtype_policy().name
        if not isinstance(name, str):
            raise TypeError(f"DTypePolicy: name must be a string such as 'float32', got {name!r} "
                            f"(of type {type(name).__name__})")
        if name in _MIXED:
            compute, variable = _MIXED[name]
        elif name == "bfloat16":        # a dtype Keras knows and numpy does not
            compute = variable = name
        else:
            try:
                compute = variable = standardize_dtype(name)
            except (TypeError, ValueError):
                raise ValueError(f"DTypePolicy: cannot convert {name!r} to a dtype policy. Valid policies are "
                                 "'mixed_float16', 'mixed_bfloat16' and dtype names such as 'float32'") from None
        self._name, self._compute_dtype, self._variable_dtype = name, compute, variable

    @property
    def name(self):
        """The policy's name."""
        return self._name

    @property
    def compute_dtype(self):
        """The dtype layers with this policy compute in (and give their outputs in)."""
        return self._compute_dtype

    @property
    def variable_dtype(self):
        """The dtype layers with this policy keep their variables in."""
        return self._variable_dtype

    @property
    def quantization_mode(self):
        """None: engine has no quantized policies."""
        return None

    def get_config(self):
        """The policy's config, `{"name": ...}`."""
        return {"name": self._name}

    @classmethod
    def from_config(cls, config):
        """The policy a config from `get_config` describes."""
        return cls(**config)

    def __repr__(self):
        return f'<DTypePolicy "{self._name}">'

    def __eq__(self, other):
        return isinstance(other, DTypePolicy) and other._name == self._name

    def __hash__(self):
        return hash(self._name)


# Keras 3 keeps FloatDTypePolicy as the name of the same (non-quantized) policy.
FloatDTypePolicy = DTypePolicy


def check_runnable(policy, who):
    """Raise a ValueError if engine cannot compute with the policy (a 16-bit compute dtype)."""
    if policy.compute_dtype in _UNSUPPORTED_COMPUTE:
        raise ValueError(f"{who}: dtype policy {policy.name!r} computes in {policy.compute_dtype}, which "
                         "engine's kernels do not (they compute in float32 and float64). Use 'float32' "
                         "(engine on a CPU gains nothing from 16-bit compute) or 'float64'.")
    return policy


def get(identifier):
    """A `DTypePolicy` from a name, a config dictionary or a policy (returned as is); None gives
    the global policy.

    Args:
        identifier: a policy name ("float32"), `{"class_name": "DTypePolicy", "config": {...}}`,
            a `DTypePolicy`, or None.
    """
    if identifier is None:
        return dtype_policy()
    if isinstance(identifier, DTypePolicy):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return DTypePolicy(identifier)
    raise ValueError(f"Cannot interpret {identifier!r} as a dtype policy: pass a name such as 'float32', "
                     "a config dictionary or a DTypePolicy")


def serialize(dtype_policy):
    """The Keras-format config dictionary of a policy.

    Args:
        dtype_policy: a `DTypePolicy`.
    """
    return {"module": "keras", "class_name": "DTypePolicy", "config": dtype_policy.get_config(),
            "registered_name": None}


def deserialize(config, custom_objects=None):
    """The policy a config dictionary (from `serialize`, or Keras's) describes.

    Args:
        config: `{"class_name": "DTypePolicy" or "FloatDTypePolicy", "config": {"name": ...}}`.
        custom_objects: optional `{name: class}` for a `DTypePolicy` subclass of the user's.
    """
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = (custom_objects or {}).get(name, DTypePolicy if name in ("DTypePolicy", "FloatDTypePolicy") else None)
    if not (isinstance(cls, type) and issubclass(cls, DTypePolicy)):
        raise ValueError(f"dtype_policies.deserialize: expected a DTypePolicy config, got {config!r:.200}")
    return cls.from_config(config.get("config", {}))


def set_dtype_policy(policy):
    """Sets the policy of layers made from now on when they are given no dtype.

    Args:
        policy: a policy name ("float32", "float64") or a `DTypePolicy`.

    Raises:
        ValueError: for a policy engine cannot compute with ("mixed_float16", "float16", ...).
    """
    if not isinstance(policy, (str, DTypePolicy)):
        raise ValueError(f"set_dtype_policy: expected a policy name such as 'float32' or a DTypePolicy, "
                         f"got {policy!r} (of type {type(policy).__name__})")
    global _global_policy
    _global_policy = check_runnable(get(policy), "set_dtype_policy")


def dtype_policy():
    """The global policy: the one `set_dtype_policy` set, else that of `floatx()`."""
    if _global_policy is not None:
        return _global_policy
    from engine import config
    return DTypePolicy(config.floatx())


def default_layer_dtype():
    """The dtype of a layer given none: the global policy's compute dtype."""
    if _global_policy is not None:
        return _global_policy.compute_dtype
    from engine import config
    return config.floatx()
