// AVX-512 VNNI 16-bit direct convolution (see ckernels_conv_s16.h): a tile of 8 output
// pixels of one row × 32 output channels in 16 zmm int32 accumulators. Per pair of taps:
// two 64-byte loads of packed weights, and per pixel a broadcast of its two input values
// (one dword) into two vpdpwssd, each 16 channels × 2 taps. The bordered input needs no
// bound checks. Sums are exact, so this writes what the portable version writes.
#include "ckernels_conv_s16.h"
#include "ckernels_conv.h"
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include <immintrin.h>

#pragma clang fp contract(off)

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

enum { NR = CK_CONV_NR, TILE = 8 };

static inline int32_t load_pair(const int16_t *p) {
    int32_t v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}

// Out of line with its 16 accumulators, as tile_full_* in conv_f32_avx512.c: inlined into the
// loops around it, they were spilled.
TARGET __attribute__((noinline)) static void tile(__m512i acc[TILE][2], const int16_t *in, size_t map_width, size_t cp,
                                                   const int16_t *w, size_t kernel, size_t stride) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    __m512i b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    const size_t pairs = kernel * cp / 2, step = stride * cp;
    for (size_t ky = 0; ky < kernel; ky++) {
        const int16_t *x = in + ky * map_width * cp;
        for (size_t q = 0; q < pairs; q++, w += 2 * NR) {
            const __m512i w0 = _mm512_load_si512(w), w1 = _mm512_load_si512(w + NR);
#define STEP(a, b, r)                                                                  \
    {                                                                                  \
        const __m512i v = _mm512_set1_epi32(load_pair(x + (r) * step + 2 * q));        \
        a = _mm512_dpwssd_epi32(a, v, w0);                                             \
        b = _mm512_dpwssd_epi32(b, v, w1);                                             \
    }
            STEP(a0, b0, 0) STEP(a1, b1, 1) STEP(a2, b2, 2) STEP(a3, b3, 3)
            STEP(a4, b4, 4) STEP(a5, b5, 5) STEP(a6, b6, 6) STEP(a7, b7, 7)
#undef STEP
        }
    }
    acc[0][0] = a0, acc[1][0] = a1, acc[2][0] = a2, acc[3][0] = a3, acc[4][0] = a4, acc[5][0] = a5, acc[6][0] = a6,
    acc[7][0] = a7;
    acc[0][1] = b0, acc[1][1] = b1, acc[2][1] = b2, acc[3][1] = b3, acc[4][1] = b4, acc[5][1] = b5, acc[6][1] = b6,
    acc[7][1] = b7;
}

TARGET
void ck_conv2d_s16_avx512vnni(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed,
                              size_t out_channels, size_t kernel, size_t stride, const float *scales, const float *bias,
                              float *out, size_t out_width, size_t first_row, size_t row_count) {
    const size_t cp = ck_conv2d_s16_channel_stride(channels), panel_size = kernel * kernel * cp * NR;
    const size_t panels = (out_channels + NR - 1) / NR;
    for (size_t p = 0; p < panels; p++) {
        const size_t nvalid = out_channels - p * NR < NR ? out_channels - p * NR : NR;
        const __mmask16 m0 = nvalid >= 16 ? 0xFFFF : (__mmask16)((1u << nvalid) - 1);
        const __mmask16 m1 = nvalid >= 32 ? 0xFFFF : nvalid <= 16 ? 0 : (__mmask16)((1u << (nvalid - 16)) - 1);
        const __m512 s0 = _mm512_maskz_loadu_ps(m0, scales + p * NR), s1 = _mm512_maskz_loadu_ps(m1, scales + p * NR + 16);
        const __m512 c0 = bias ? _mm512_maskz_loadu_ps(m0, bias + p * NR) : _mm512_setzero_ps();
        const __m512 c1 = bias ? _mm512_maskz_loadu_ps(m1, bias + p * NR + 16) : _mm512_setzero_ps();
        for (size_t oy = first_row; oy < first_row + row_count; oy++) {
            for (size_t ox0 = 0; ox0 < out_width; ox0 += TILE) {
                const size_t pixels = out_width - ox0 < TILE ? out_width - ox0 : TILE;
                __m512i acc[TILE][2];
                tile(acc, in + (oy * stride * map_width + ox0 * stride) * cp, map_width, cp, packed + p * panel_size, kernel,
                     stride);
                float *o = out + (oy * out_width + ox0) * out_channels + p * NR;
                for (size_t r = 0; r < pixels; r++) {
                    // (float)sum · scale, then + bias: two roundings, as the portable version.
                    __m512 v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][0]), s0);
                    __m512 v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[r][1]), s1);
                    if (bias) v0 = _mm512_add_ps(v0, c0), v1 = _mm512_add_ps(v1, c1);
                    if (nvalid == NR) {
                        _mm512_storeu_ps(o + r * out_channels, v0);
                        _mm512_storeu_ps(o + r * out_channels + 16, v1);
                    } else {
                        _mm512_mask_storeu_ps(o + r * out_channels, m0, v0);
                        _mm512_mask_storeu_ps(o + r * out_channels + 16, m1, v1);
                    }
                }
            }
        }
    }
}
#endif
