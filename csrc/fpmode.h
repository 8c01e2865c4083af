/* Flush denormal floats to zero for the duration of a kernel (per thread: the x86 SSE control
 * register MXCSR, FTZ and DAZ bits).
 *
 * Gradients flowing back through a long sequence shrink geometrically (the forget gate
 * multiplies the cell gradient every step), and once they fall below ~1e-38 every multiply
 * on them takes a microcode assist of a hundred cycles or more: an LSTM backward step at
 * T = 200 ran 20x slower here.  Values that small carry nothing a float32 model can use, and
 * TensorFlow's CPU kernels flush them too.  Elsewhere (other architectures) this is a no-op. */
#ifndef ENGINE_FPMODE_H
#define ENGINE_FPMODE_H

#if (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
#include <xmmintrin.h>
static inline unsigned int engine_ftz_enter(void)
{
    unsigned int old = _mm_getcsr();
    _mm_setcsr(old | 0x8040u);      /* FTZ (bit 15) | DAZ (bit 6) */
    return old;
}
static inline void engine_ftz_leave(unsigned int old) { _mm_setcsr(old); }
#else
static inline unsigned int engine_ftz_enter(void) { return 0; }
static inline void engine_ftz_leave(unsigned int old) { (void)old; }
#endif

#endif
