"""The one SIMD switch for the kernel tests: `isa_level` runs a test once per instruction set
this CPU has (portable always; AVX2 and AVX-512 where supported), through
engine.config.set_simd_path, and restores the level it found (so ENGINE_SIMD=portable runs stay
portable between tests)."""
import pytest

from engine import config
from engine._kernels import runtime

_ORDER = ("portable", "avx2", "avx512")
ISA_LEVELS = _ORDER[:_ORDER.index(runtime.simd_max()) + 1]


@pytest.fixture(params=ISA_LEVELS)
def isa_level(request):
    previous = config.get_simd_path()
    assert config.set_simd_path(request.param) == request.param
    yield request.param
    config.set_simd_path(previous)
