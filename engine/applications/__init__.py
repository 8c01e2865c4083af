"""engine.applications: reference architectures built from the public layers (weights=None only)."""
from engine.applications.xception import Xception
