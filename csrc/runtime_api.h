/* The process-wide kernel settings every module reads: the thread cap and the instruction-set
 * level.  One copy lives in the runtime module (runtime.pyx defines ENGINE_RUNTIME_PROVIDER and
 * publishes it in the capsule engine._kernels.runtime._c_api); every other module calls
 * engine_runtime_import() once at import time and reads the same struct through a pointer.
 * So engine/_fork.py sets the after-fork cap once, and engine.config.set_simd_path (or the
 * ENGINE_SIMD environment variable) caps every kernel family at once.
 *
 * Instruction-set levels, the index of every family's per-ISA table (see isa.h):
 *   0 portable C (baseline x86-64: SSE2; any other target), 1 AVX2+FMA, 2 AVX-512F.
 * isa_level = min(what the CPU has, the cap): detected once, when the runtime module loads.
 */
#ifndef ENGINE_RUNTIME_API_H
#define ENGINE_RUNTIME_API_H

#include "cpu_features.h"

#define ENGINE_RUNTIME_CAPSULE "engine._kernels.runtime._c_api"

enum { ENGINE_ISA_PORTABLE = 0, ENGINE_ISA_AVX2 = 1, ENGINE_ISA_AVX512 = 2, ENGINE_ISA_LEVELS = 3 };

typedef struct {
    /* Teams are capped at this many threads (0: no cap).  Read on every team, so a cap set
     * from another Python thread takes effect on the next kernel. */
    volatile int thread_cap;
    /* The level every family dispatches on now, and the best the CPU supports. */
    volatile int isa_level;
    int isa_max;
} engine_runtime;

/* The best level this CPU runs (the builds are baseline x86-64; SIMD code is compiled per
 * function with target attributes, so this decides what runs). */
static inline int engine_cpu_isa_max(void)
{
    if (engine_cpu_has_avx2_fma()) return engine_cpu_has_avx512f() ? ENGINE_ISA_AVX512 : ENGINE_ISA_AVX2;
    return ENGINE_ISA_PORTABLE;
}

#ifdef ENGINE_RUNTIME_PROVIDER
static engine_runtime engine_runtime_state = {0, 0, 0};
static engine_runtime *engine_rt = &engine_runtime_state;

static void engine_runtime_init(void)
{
    engine_runtime_state.isa_max = engine_cpu_isa_max();
    engine_runtime_state.isa_level = engine_runtime_state.isa_max;
}
#else
#include <Python.h>

static engine_runtime *engine_rt = NULL;

/* Returns -1 with a Python exception set when the runtime module cannot be loaded. */
static int engine_runtime_import(void)
{
    engine_rt = (engine_runtime *)PyCapsule_Import(ENGINE_RUNTIME_CAPSULE, 0);
    return engine_rt == NULL ? -1 : 0;
}
#endif

/* The index into a family's per-ISA table (isa.h). */
static inline int engine_isa_level(void) { return engine_rt->isa_level; }

#endif
