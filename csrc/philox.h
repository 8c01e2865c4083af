/* Counter-based random bits for dropout: Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel
 * random numbers: as easy as 1, 2, 3", SC 2011), built per instruction set (isa.h's scheme).
 *
 * A counter-based generator gives the random word of element e as a pure function of (key, e),
 * so a dropout mask needs no stored state: the forward and the backward compute the same mask
 * from the same key, each thread computes its own span, and a data-parallel rank computes only
 * its rows of the global batch's mask (offset = its first row's element index) and still gets
 * the words one process would.
 *
 * The stream (fixed, whatever the instruction set; tests/kernels/test_philox.py writes it out
 * independently): elements come in groups of 64; element 64 g + 16 w + l (lane l < 16, word
 * w < 4) is word w of Philox4x32-10 of the counter (16 g + l as 64 bits in words 0 and 1, 0 in
 * words 2 and 3) under the 64-bit key (low half key word 0).  Sixteen lanes is the width of an
 * AVX-512 register of 32-bit words; the AVX2 and portable builds run the same 16 lanes (as two
 * vectors, or as the compiler manages), so every level gives the same bits.
 *
 * An element is kept when its word is >= threshold (a rate r drops with probability
 * threshold / 2^32, threshold = round(r 2^32)).
 */
#ifndef ENGINE_PHILOX_H
#define ENGINE_PHILOX_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "isa.h"

#define ENGINE_PHILOX_LANES 16
#define ENGINE_PHILOX_GROUP (4 * ENGINE_PHILOX_LANES)

/* The 64 words of group g: r[16 w + l] = word w of block 16 g + l.  The portable build is plain C;
 * the x86 builds write the rounds with intrinsics (gcc does not vectorise the widening products of
 * the plain loops), two products per register of 32-bit lanes: the even lanes' 64-bit products
 * and, shifted down, the odd lanes'. */
#define ENGINE_PHILOX_M0 0xD2511F53u
#define ENGINE_PHILOX_M1 0xCD9E8D57u
#define ENGINE_PHILOX_W0 0x9E3779B9u
#define ENGINE_PHILOX_W1 0xBB67AE85u

#if defined(__SSE2__)
#include <emmintrin.h>
/* Baseline x86-64 has SSE2: the portable level runs the rounds 4 lanes at a time. */
static inline void engine_philox_group_portable(uint64_t g, uint64_t key, uint32_t *r) {
    const __m128i m0 = _mm_set1_epi32((int)ENGINE_PHILOX_M0), m1 = _mm_set1_epi32((int)ENGINE_PHILOX_M1);
    const __m128i low = _mm_set_epi32(0, -1, 0, -1);     /* the low 32-bit lane of each 64-bit pair */
    uint64_t block = g * ENGINE_PHILOX_LANES;
    int quarter, round;
    for (quarter = 0; quarter < 4; quarter++) {
        __m128i c0 = _mm_add_epi32(_mm_set1_epi32((int)(uint32_t)(block + 4 * quarter)), _mm_setr_epi32(0, 1, 2, 3));
        __m128i c1 = _mm_set1_epi32((int)(uint32_t)(block >> 32));
        __m128i c2 = _mm_setzero_si128(), c3 = _mm_setzero_si128();
        uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
        for (round = 0; round < 10; round++) {
            __m128i e0 = _mm_mul_epu32(c0, m0), o0 = _mm_mul_epu32(_mm_srli_epi64(c0, 32), m0);
            __m128i e1 = _mm_mul_epu32(c2, m1), o1 = _mm_mul_epu32(_mm_srli_epi64(c2, 32), m1);
            __m128i hi0 = _mm_or_si128(_mm_srli_epi64(e0, 32), _mm_andnot_si128(low, o0));
            __m128i hi1 = _mm_or_si128(_mm_srli_epi64(e1, 32), _mm_andnot_si128(low, o1));
            __m128i lo0 = _mm_or_si128(_mm_and_si128(e0, low), _mm_slli_epi64(o0, 32));
            __m128i lo1 = _mm_or_si128(_mm_and_si128(e1, low), _mm_slli_epi64(o1, 32));
            c0 = _mm_xor_si128(_mm_xor_si128(hi1, c1), _mm_set1_epi32((int)k0));
            c2 = _mm_xor_si128(_mm_xor_si128(hi0, c3), _mm_set1_epi32((int)k1));
            c1 = lo1;
            c3 = lo0;
            k0 += ENGINE_PHILOX_W0;
            k1 += ENGINE_PHILOX_W1;
        }
        _mm_storeu_si128((__m128i *)(r + 4 * quarter), c0);
        _mm_storeu_si128((__m128i *)(r + ENGINE_PHILOX_LANES + 4 * quarter), c1);
        _mm_storeu_si128((__m128i *)(r + 2 * ENGINE_PHILOX_LANES + 4 * quarter), c2);
        _mm_storeu_si128((__m128i *)(r + 3 * ENGINE_PHILOX_LANES + 4 * quarter), c3);
    }
}
#else
static inline void engine_philox_group_portable(uint64_t g, uint64_t key, uint32_t *r) {
    int l, round;
    for (l = 0; l < ENGINE_PHILOX_LANES; l++) {
        uint64_t b = g * ENGINE_PHILOX_LANES + (uint64_t)l;
        uint32_t c0 = (uint32_t)b, c1 = (uint32_t)(b >> 32), c2 = 0, c3 = 0;
        uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
        for (round = 0; round < 10; round++) {
            uint64_t p0 = (uint64_t)ENGINE_PHILOX_M0 * c0, p1 = (uint64_t)ENGINE_PHILOX_M1 * c2;
            c0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
            c2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
            c1 = (uint32_t)p1;
            c3 = (uint32_t)p0;
            k0 += ENGINE_PHILOX_W0;
            k1 += ENGINE_PHILOX_W1;
        }
        r[l] = c0;
        r[ENGINE_PHILOX_LANES + l] = c1;
        r[2 * ENGINE_PHILOX_LANES + l] = c2;
        r[3 * ENGINE_PHILOX_LANES + l] = c3;
    }
}
#endif

#if ENGINE_X86_SIMD
#include <immintrin.h>

/* One round on 8 lanes: (hi, lo) of M * a per 32-bit lane. */
#define ENGINE_PHILOX_MULHILO_256(a, m, hi, lo)                                                    \
    do {                                                                                           \
        __m256i even_ = _mm256_mul_epu32((a), (m));                                                \
        __m256i odd_ = _mm256_mul_epu32(_mm256_srli_epi64((a), 32), (m));                          \
        (lo) = _mm256_blend_epi32(even_, _mm256_slli_epi64(odd_, 32), 0xAA);                       \
        (hi) = _mm256_blend_epi32(_mm256_srli_epi64(even_, 32), odd_, 0xAA);                       \
    } while (0)

ENGINE_TARGET_AVX2 static inline void engine_philox_group_avx2(uint64_t g, uint64_t key, uint32_t *r) {
    const __m256i m0 = _mm256_set1_epi32((int)ENGINE_PHILOX_M0), m1 = _mm256_set1_epi32((int)ENGINE_PHILOX_M1);
    uint64_t block = g * ENGINE_PHILOX_LANES;
    int half, round;
    for (half = 0; half < 2; half++) {
        /* the blocks' low words: block + 8 half + lane (the high word is the same for all 16
           lanes: a group never crosses a multiple of 2^32 blocks, as 16 divides 2^32) */
        __m256i c0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)(block + 8 * half)),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256i c1 = _mm256_set1_epi32((int)(uint32_t)(block >> 32));
        __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
        uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
        for (round = 0; round < 10; round++) {
            __m256i hi0, lo0, hi1, lo1;
            ENGINE_PHILOX_MULHILO_256(c0, m0, hi0, lo0);
            ENGINE_PHILOX_MULHILO_256(c2, m1, hi1, lo1);
            c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
            c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
            c1 = lo1;
            c3 = lo0;
            k0 += ENGINE_PHILOX_W0;
            k1 += ENGINE_PHILOX_W1;
        }
        _mm256_storeu_si256((__m256i *)(r + 8 * half), c0);
        _mm256_storeu_si256((__m256i *)(r + ENGINE_PHILOX_LANES + 8 * half), c1);
        _mm256_storeu_si256((__m256i *)(r + 2 * ENGINE_PHILOX_LANES + 8 * half), c2);
        _mm256_storeu_si256((__m256i *)(r + 3 * ENGINE_PHILOX_LANES + 8 * half), c3);
    }
}

ENGINE_TARGET_AVX512 static inline void engine_philox_group_avx512(uint64_t g, uint64_t key, uint32_t *r) {
    const __m512i m0 = _mm512_set1_epi32((int)ENGINE_PHILOX_M0), m1 = _mm512_set1_epi32((int)ENGINE_PHILOX_M1);
    uint64_t block = g * ENGINE_PHILOX_LANES;
    __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)block),
                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    __m512i c1 = _mm512_set1_epi32((int)(uint32_t)(block >> 32));
    __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    int round;
    for (round = 0; round < 10; round++) {
        __m512i e0 = _mm512_mul_epu32(c0, m0), o0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
        __m512i e1 = _mm512_mul_epu32(c2, m1), o1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
        __m512i hi0 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(e0, 32), o0);
        __m512i hi1 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(e1, 32), o1);
        __m512i lo0 = _mm512_mask_blend_epi32(0xAAAA, e0, _mm512_slli_epi64(o0, 32));
        __m512i lo1 = _mm512_mask_blend_epi32(0xAAAA, e1, _mm512_slli_epi64(o1, 32));
        /* xor of three: one ternary-logic instruction (0x96) */
        c0 = _mm512_ternarylogic_epi32(hi1, c1, _mm512_set1_epi32((int)k0), 0x96);
        c2 = _mm512_ternarylogic_epi32(hi0, c3, _mm512_set1_epi32((int)k1), 0x96);
        c1 = lo1;
        c3 = lo0;
        k0 += ENGINE_PHILOX_W0;
        k1 += ENGINE_PHILOX_W1;
    }
    _mm512_storeu_si512((void *)r, c0);
    _mm512_storeu_si512((void *)(r + ENGINE_PHILOX_LANES), c1);
    _mm512_storeu_si512((void *)(r + 2 * ENGINE_PHILOX_LANES), c2);
    _mm512_storeu_si512((void *)(r + 3 * ENGINE_PHILOX_LANES), c3);
}
#endif

/* Walk the groups covering global elements [offset + lo, offset + hi): BODY sees the group's
 * words r, the local index range [a, b) it covers and the word index j0 of local index a. */
#define ENGINE_PHILOX_FOR_GROUPS(SUFFIX, lo, hi, offset, key, BODY)                                \
    {                                                                                              \
        uint32_t r[ENGINE_PHILOX_GROUP];                                                           \
        ptrdiff_t a = (lo);                                                                        \
        while (a < (hi)) {                                                                         \
            uint64_t e = (offset) + (uint64_t)a;                                                   \
            uint64_t g = e / ENGINE_PHILOX_GROUP;                                                  \
            ptrdiff_t j0 = (ptrdiff_t)(e - g * ENGINE_PHILOX_GROUP);                               \
            ptrdiff_t b = a + (ENGINE_PHILOX_GROUP - j0);                                          \
            if (b > (hi)) b = (hi);                                                                \
            engine_philox_group_##SUFFIX(g, (key), r);                                             \
            BODY                                                                                   \
            a = b;                                                                                 \
        }                                                                                          \
    }

/* out[i] = x[i] * scale where element offset + i is kept, else 0 (a select: a dropped NaN or
 * inf gives 0), for i in [lo, hi). */
#define ENGINE_PHILOX_DEFINE_DROPOUT(T, UT, TN, SUFFIX, ATTR)                                          \
ATTR static void engine_philox_dropout_##TN##_##SUFFIX(const T *x, T *out, ptrdiff_t lo,          \
        ptrdiff_t hi, uint64_t offset, uint64_t key, uint32_t threshold, T scale) {                \
    const int32_t biased = (int32_t)(threshold ^ 0x80000000u);                                     \
    ENGINE_PHILOX_FOR_GROUPS(SUFFIX, lo, hi, offset, key, {                                        \
        const uint32_t *rr = r + j0 - a;                                                           \
        ptrdiff_t i;                                                                               \
        for (i = a; i < b; i++) {                                                                  \
            /* the select as a bit mask: gcc keeps `keep ? x * scale : 0` a branch (taken half   \
               the time, at random) rather than speculate the multiply */                         \
            T v = x[i] * scale;                                                                    \
            UT bits;                                                                               \
            UT keep = (UT)0 - (UT)((int32_t)(rr[i] ^ 0x80000000u) >= biased);                      \
            memcpy(&bits, &v, sizeof bits);                                                        \
            bits &= keep;                                                                          \
            memcpy(out + i, &bits, sizeof bits);                                                   \
        }                                                                                          \
    })                                                                                             \
}

#define ENGINE_PHILOX_DEFINE_MASK(SUFFIX, ATTR)                                                    \
ATTR static void engine_philox_mask_##SUFFIX(uint8_t *mask, ptrdiff_t lo, ptrdiff_t hi,           \
        uint64_t offset, uint64_t key, uint32_t threshold) {                                       \
    const int32_t biased = (int32_t)(threshold ^ 0x80000000u);                                     \
    ENGINE_PHILOX_FOR_GROUPS(SUFFIX, lo, hi, offset, key, {                                        \
        const uint32_t *rr = r + j0 - a;                                                           \
        ptrdiff_t i;                                                                               \
        for (i = a; i < b; i++) mask[i] = (int32_t)(rr[i] ^ 0x80000000u) >= biased;                \
    })                                                                                             \
}

typedef struct {
    void (*dropout_f32)(const float *, float *, ptrdiff_t, ptrdiff_t, uint64_t, uint64_t, uint32_t, float);
    void (*dropout_f64)(const double *, double *, ptrdiff_t, ptrdiff_t, uint64_t, uint64_t, uint32_t,
                        double);
    void (*mask)(uint8_t *, ptrdiff_t, ptrdiff_t, uint64_t, uint64_t, uint32_t);
} engine_philox_isa_table;

#define ENGINE_PHILOX_INSTANCE(SUFFIX, ATTR)                                                       \
    ENGINE_PHILOX_DEFINE_DROPOUT(float, uint32_t, f32, SUFFIX, ATTR)                                         \
    ENGINE_PHILOX_DEFINE_DROPOUT(double, uint64_t, f64, SUFFIX, ATTR)                                        \
    ENGINE_PHILOX_DEFINE_MASK(SUFFIX, ATTR)                                                        \
    static const engine_philox_isa_table engine_philox_table_##SUFFIX = {                          \
        engine_philox_dropout_f32_##SUFFIX, engine_philox_dropout_f64_##SUFFIX,                    \
        engine_philox_mask_##SUFFIX};

ENGINE_PHILOX_INSTANCE(portable, )
#if ENGINE_X86_SIMD
ENGINE_PHILOX_INSTANCE(avx2, ENGINE_TARGET_AVX2)
ENGINE_PHILOX_INSTANCE(avx512, ENGINE_TARGET_AVX512)
ENGINE_ISA_TABLES(engine_philox_isa_table, engine_philox_isa, &engine_philox_table_portable,
                  &engine_philox_table_avx2, &engine_philox_table_avx512)
#else
ENGINE_ISA_TABLES(engine_philox_isa_table, engine_philox_isa, &engine_philox_table_portable,
                  &engine_philox_table_portable, &engine_philox_table_portable)
#endif
#undef ENGINE_PHILOX_INSTANCE

static inline void engine_philox_dropout_f32(const float *x, float *out, ptrdiff_t lo, ptrdiff_t hi,
                                             uint64_t offset, uint64_t key, uint32_t threshold, float scale) {
    engine_philox_isa()->dropout_f32(x, out, lo, hi, offset, key, threshold, scale);
}

static inline void engine_philox_dropout_f64(const double *x, double *out, ptrdiff_t lo, ptrdiff_t hi,
                                             uint64_t offset, uint64_t key, uint32_t threshold, double scale) {
    engine_philox_isa()->dropout_f64(x, out, lo, hi, offset, key, threshold, scale);
}

static inline void engine_philox_mask(uint8_t *mask, ptrdiff_t lo, ptrdiff_t hi, uint64_t offset,
                                      uint64_t key, uint32_t threshold) {
    engine_philox_isa()->mask(mask, lo, hi, offset, key, threshold);
}

#endif
