"""keras.mixed_precision: dtype policies under their mixed-precision names, and the loss-scaling
optimizer wrapper.

engine computes in float32 or float64 only, so a 16-bit policy ("mixed_float16",
"mixed_bfloat16") is refused with an error that says so; `LossScaleOptimizer` works with any
policy (it scales the loss and unscales the gradients exactly as Keras's does).
"""
from engine.dtype_policies import DTypePolicy, dtype_policy, set_dtype_policy
from engine.optimizers import LossScaleOptimizer  # noqa: F401

Policy = DTypePolicy
global_policy = dtype_policy
set_global_policy = set_dtype_policy
