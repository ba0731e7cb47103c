// AVX-512 version of MTLSegFormer's cross-task gates and the combine conv's input (see ck_gate_concat_u8 in
// ckernels_q8.h); chosen by ops_dispatch.c. The same roundings as gate_concat_u8.c's: four zmm accumulators
// are a dot product's 64 lanes, two pixels at a time share the weights' loads (loads, not arithmetic, bound
// this part), the halving adds are the portable version's, and exp is ck_math.h's own, per pixel. Pixels go
// CK_GATE_CHUNK at a time: first their gate values, then their bytes, while their rows are still in L1.
// (The pragmas come first: they must cover ck_math.h's exp too.)
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include "ck_math.h"
#include "ckernels_q8.h"
#include "vectors_avx512.h"

_Static_assert(CK_GATE_DOT_LANES == 64, "four zmm accumulators are the 64 lanes");
_Static_assert(CK_GATE_CHUNK % 2 == 0, "pixels go in pairs");

/// Adds x[i]·w[i] and y[i]·w[i] (i < n) into the lanes of two pixels: lane l of acc[k] is lane 16k + l. Past n
/// the masked loads add 0·0 = +0, which changes no lane (a lane that starts at +0 is never −0).
static inline CK_AVX512 void add_products2(__m512 ax[4], __m512 ay[4], const float *x, const float *y, const float *w, size_t n) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++) {
            const __m512 wk = _mm512_loadu_ps(w + i + 16 * k);
            ax[k] = _mm512_add_ps(ax[k], _mm512_mul_ps(_mm512_loadu_ps(x + i + 16 * k), wk));
            ay[k] = _mm512_add_ps(ay[k], _mm512_mul_ps(_mm512_loadu_ps(y + i + 16 * k), wk));
        }
    for (int k = 0; k < 4 && i + 16 * k < n; k++) {
        const __mmask16 m = tail_mask(n - i - 16 * k);
        const __m512 wk = _mm512_maskz_loadu_ps(m, w + i + 16 * k);
        ax[k] = _mm512_add_ps(ax[k], _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i + 16 * k), wk));
        ay[k] = _mm512_add_ps(ay[k], _mm512_mul_ps(_mm512_maskz_loadu_ps(m, y + i + 16 * k), wk));
    }
}

/// The 64 lanes summed by halves, as the portable sum_lanes.
static inline CK_AVX512 float sum_lanes(const __m512 acc[4]) {
    const __m512 l32 = _mm512_add_ps(acc[0], acc[2]), h32 = _mm512_add_ps(acc[1], acc[3]); // 64 → 32 lanes
    const __m512 l16 = _mm512_add_ps(l32, h32);                                             // 32 → 16
    const __m256 l8 = _mm256_add_ps(_mm512_castps512_ps256(l16), _mm512_extractf32x8_ps(l16, 1));
    const __m128 l4 = _mm_add_ps(_mm256_castps256_ps128(l8), _mm256_extractf128_ps(l8, 1));
    const __m128 l2 = _mm_add_ps(l4, _mm_movehl_ps(l4, l4));
    return _mm_cvtss_f32(_mm_add_ss(l2, _mm_shuffle_ps(l2, l2, 1)));
}

/// round_even(x·inv) + zp as int32 lanes: ck_quantize_u8 before its clamp, which the saturating packs do (values
/// past 2³⁰ clamp to 255 there as here).
static inline CK_AVX512 __m512i quantize_lanes(__m512 x, __m512 inv, __m512i zp) {
    return _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(x, inv), _mm512_set1_ps(1073741824.0f))), zp);
}

/// 64 int32 lanes clamped to bytes, in order.
static inline CK_AVX512 __m512i pack_bytes(__m512i a, __m512i b, __m512i c, __m512i d) {
    const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
    // Per 128-bit block j the packs hold a_j, b_j, c_j, d_j (4 bytes... 16 bytes each as dwords 4j..4j+3):
    // put the dwords of a first, then b, c, d.
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes);
}

/// Row `q` of the output: q(own) then q(Σ_g a_g·others_g), each `channels` bytes.
static inline CK_AVX512 void store_pixel(uint8_t *q, const float *f, const float *const *others, size_t row, size_t channels,
                                         size_t gates, const float *a, size_t a_stride, __m512 inv, __m512i zp) {
    size_t c = 0;
    for (; c + 64 <= channels; c += 64) {
        __m512i v[4];
        for (int k = 0; k < 4; k++) v[k] = quantize_lanes(_mm512_loadu_ps(f + c + 16 * k), inv, zp);
        _mm512_storeu_si512(q + c, pack_bytes(v[0], v[1], v[2], v[3]));
        for (int k = 0; k < 4; k++) {
            __m512 cross = _mm512_mul_ps(_mm512_set1_ps(a[0]), _mm512_loadu_ps(others[0] + row + c + 16 * k));
            for (size_t g = 1; g < gates; g++)
                cross = _mm512_add_ps(cross, _mm512_mul_ps(_mm512_set1_ps(a[g * a_stride]), _mm512_loadu_ps(others[g] + row + c + 16 * k)));
            v[k] = quantize_lanes(cross, inv, zp);
        }
        _mm512_storeu_si512(q + channels + c, pack_bytes(v[0], v[1], v[2], v[3]));
    }
    for (; c < channels; c += 16) {
        const __mmask16 m = tail_mask(channels - c);
        const __m128i own = _mm512_cvtusepi32_epi8(_mm512_max_epi32(quantize_lanes(_mm512_maskz_loadu_ps(m, f + c), inv, zp),
                                                                    _mm512_setzero_si512()));
        __m512 cross = _mm512_mul_ps(_mm512_set1_ps(a[0]), _mm512_maskz_loadu_ps(m, others[0] + row + c));
        for (size_t g = 1; g < gates; g++)
            cross = _mm512_add_ps(cross, _mm512_mul_ps(_mm512_set1_ps(a[g * a_stride]), _mm512_maskz_loadu_ps(m, others[g] + row + c)));
        const __m128i gated = _mm512_cvtusepi32_epi8(_mm512_max_epi32(quantize_lanes(cross, inv, zp), _mm512_setzero_si512()));
        _mm_mask_storeu_epi8(q + c, m, own);
        _mm_mask_storeu_epi8(q + channels + c, m, gated);
    }
}

CK_AVX512
void ck_gate_concat_u8_avx512(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                              size_t gates, const float *const *self_weights, const float *const *other_weights,
                              const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                              float *scratch) {
    const __m512 inv = _mm512_set1_ps(inv_scale);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    for (size_t p0 = 0; p0 < pixels; p0 += CK_GATE_CHUNK) {
        const size_t count = pixels - p0 < CK_GATE_CHUNK ? pixels - p0 : CK_GATE_CHUNK;
        // scratch[g·CK_GATE_CHUNK + i]: gate g of pixel p0 + i. Pairs of pixels; an odd last one is paired with itself.
        for (size_t g = 0; g < gates; g++)
            for (size_t i = 0; i < count; i += 2) {
                const size_t j = i + 1 < count ? i + 1 : i, rx = (p0 + i) * ld, ry = (p0 + j) * ld;
                __m512 ax[4], ay[4];
                for (int k = 0; k < 4; k++) ax[k] = ay[k] = _mm512_setzero_ps();
                add_products2(ax, ay, own + rx, own + ry, self_weights[g], channels);
                add_products2(ax, ay, others[g] + rx, others[g] + ry, other_weights[g], channels);
                const float sx = sum_lanes(ax) + bias[g], sy = sum_lanes(ay) + bias[g];
                scratch[g * CK_GATE_CHUNK + i] = 1.0f / (1.0f + ck_expf(-sx));
                scratch[g * CK_GATE_CHUNK + j] = 1.0f / (1.0f + ck_expf(-sy));
            }
        for (size_t i = 0; i < count; i++) {
            const size_t row = (p0 + i) * ld;
            store_pixel(out + (p0 + i) * ldo, own + row, others, row, channels, gates, scratch + i, CK_GATE_CHUNK, inv, zp);
        }
    }
}
#endif
