// AVX-512 (F, BW, VL, DQ) versions of the attention softmax and the Mix-FFN depthwise
// conv + GELU; chosen at run time by ck_ops_isa() (ops_internal.h).
#include "ops_internal.h"

#if defined(CK_HAVE_X86_KERNELS)
#include <immintrin.h>
#include <math.h>

#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

static inline CK_AVX512 __mmask16 tail_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/// e^x for x ≤ 0, the same steps as attention_expf in attention_q8.c (clamp at −87,
/// Cody-Waite reduction, degree-6 Taylor polynomial), so its results are the same.
static inline CK_AVX512 __m512 exp_nonpositive(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n); // n ≥ −126: 2^n is a normal float, as in the scalar version
}

CK_AVX512
void ck_softmax_exp_u8_avx512(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                              float *inv_sums) {
    const __m512 k255 = _mm512_set1_ps(255.0f), ninf = _mm512_set1_ps(-INFINITY);
    for (size_t r = 0; r < rows; r++) {
        const float *s = scores + r * lds;
        uint8_t *q = out + r * ldo;
        // Row max, four accumulators.
        __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
        size_t c = 0;
        for (; c + 64 <= cols; c += 64) {
            m0 = _mm512_max_ps(m0, _mm512_loadu_ps(s + c));
            m1 = _mm512_max_ps(m1, _mm512_loadu_ps(s + c + 16));
            m2 = _mm512_max_ps(m2, _mm512_loadu_ps(s + c + 32));
            m3 = _mm512_max_ps(m3, _mm512_loadu_ps(s + c + 48));
        }
        for (; c < cols; c += 16) m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, tail_mask(cols - c), s + c));
        const float max = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3)));
        const __m512 vmax = _mm512_set1_ps(max);
        // e = round_even(255·exp(s − max)), written as bytes and summed.
        __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
        // Bytes by packing (vpmovdb to memory is slow on Zen 4/5): packus(packus(v0, v1),
        // packus(v2, v3)) holds, in 128-bit lane j, dword k = lane j of v_k; one permute
        // puts them in order. Values are in 0...255, so the saturating packs are exact.
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        for (c = 0; c + 64 <= cols; c += 64) {
            const __m512i v0 = _mm512_cvtps_epi32(_mm512_mul_ps(exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + c), vmax)), k255));
            const __m512i v1 = _mm512_cvtps_epi32(_mm512_mul_ps(exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + c + 16), vmax)), k255));
            const __m512i v2 = _mm512_cvtps_epi32(_mm512_mul_ps(exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + c + 32), vmax)), k255));
            const __m512i v3 = _mm512_cvtps_epi32(_mm512_mul_ps(exp_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(s + c + 48), vmax)), k255));
            sum0 = _mm512_add_epi32(sum0, _mm512_add_epi32(v0, v1));
            sum1 = _mm512_add_epi32(sum1, _mm512_add_epi32(v2, v3));
            const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(v0, v1), _mm512_packus_epi32(v2, v3));
            _mm512_storeu_si512((void *)(q + c), _mm512_permutexvar_epi32(order, bytes));
        }
        for (; c < cols; c += 16) {
            const __mmask16 m = tail_mask(cols - c);
            const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + c), vmax));
            const __m512i v = _mm512_maskz_cvtps_epi32(m, _mm512_mul_ps(e, k255));
            sum0 = _mm512_add_epi32(sum0, v);
            _mm512_mask_cvtepi32_storeu_epi8(q + c, m, v);
        }
        inv_sums[r] = 1.0f / (float)_mm512_reduce_add_epi32(_mm512_add_epi32(sum0, sum1));
    }
}

// ---- Depthwise 3×3 + bias + exact GELU, u8 → u8.

/// 0.5·x·(1 + erf(x/√2)). erf(z) = z·P(z²)/Q(z²) on z clamped to [−4, 4], a rational
/// fit (degrees 5/4 in z²) with absolute error ≤ 1.1e-6 in float (|erf(4)−1| is 1.5e-8);
/// the scalar version's Abramowitz & Stegun formula (≤ 1.5e-7) needs an exp and a
/// division, twice the work. The difference is 1e-6·|x|/2 at most: the u8 output
/// (resolution ~1e-2) moves only where it sits on a rounding boundary, by 1.
/// 1/Q by rcp14 and one Newton step.
/// Returns gelu(x)·out_scale; half_scale = 0.5·out_scale.
static inline CK_AVX512 __m512 gelu_scaled(__m512 x, __m512 half_scale) {
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752440f));
    z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
    const __m512 u = _mm512_mul_ps(z, z);
    __m512 p = _mm512_set1_ps(-1.0943179348e-06f);
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.9000959845e-04f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(7.8286511363e-03f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(6.5707636542e-02f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(3.1121231827e-01f));
    p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(1.1283847179e+00f));
    __m512 q = _mm512_set1_ps(1.7752801e-03f);
    q = _mm512_fmadd_ps(q, u, _mm512_set1_ps(2.3642876e-02f));
    q = _mm512_fmadd_ps(q, u, _mm512_set1_ps(0.1612020007f));
    q = _mm512_fmadd_ps(q, u, _mm512_set1_ps(0.6091786545f));
    q = _mm512_fmadd_ps(q, u, _mm512_set1_ps(1.0f)); // ≥ 1
    __m512 r = _mm512_rcp14_ps(q);
    r = _mm512_mul_ps(r, _mm512_fnmadd_ps(q, r, _mm512_set1_ps(2.0f)));
    const __m512 erf = _mm512_mul_ps(_mm512_mul_ps(z, p), r);
    const __m512 hx = _mm512_mul_ps(x, half_scale);
    return _mm512_fmadd_ps(hx, erf, hx);
}

/// clamp(round_even(v) + zp, 0, 255) as bytes in the low 16 of 64: v·inv is formed by
/// the caller. The int conversion rounds half-even (MXCSR default); above 255 the
/// saturating vpmovusdb clamps.
static inline CK_AVX512 __m128i quantize_scaled_u8(__m512 v, __m512i zp) {
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
    q = _mm512_max_epi32(q, _mm512_setzero_si512());
    return _mm512_cvtusepi32_epi8(q);
}

/// (q − zp) as floats, for 16 channels (masked lanes read nothing).
static inline CK_AVX512 __m512 centred(const uint8_t *p, __mmask16 m, __m512i zp) {
    const __m128i b = _mm_maskz_loadu_epi8(m, p);
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(b), zp));
}

// Each output row is walked 16 channels at a time along x, 4 pixels per step, with the
// 9 weights in registers and the window's last two input columns carried over: every
// input byte is converted once per output row, and out-of-map taps are zero vectors,
// which add nothing (as the scalar version's skipped taps). Each pixel's taps are
// summed in the scalar version's order (row by row, left to right, fused multiply-adds).
// Four independent pixels per step keep the long GELU dependency chains overlapped.
CK_AVX512
void ck_dwconv3x3_gelu_u8_avx512(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                 size_t channels, const float *weight, const float *bias,
                                 float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                                 size_t first_row, size_t row_count) {
    const __m512i zp_in = _mm512_set1_epi32(in_zero_point);
    const __m512 scale = _mm512_set1_ps(in_scale), half_inv = _mm512_set1_ps(0.5f * out_inv_scale),
                 zero = _mm512_setzero_ps();
    const __m512i zp_out = _mm512_set1_epi32(out_zero_point);
    const size_t end = first_row + row_count < height ? first_row + row_count : height;
    for (size_t y = first_row; y < end; y++) {
        const uint8_t *rows[3];
        for (int dy = 0; dy < 3; dy++) {
            const long sy = (long)y + dy - 1;
            rows[dy] = (sy < 0 || sy >= (long)height) ? NULL : in + (size_t)sy * width * ldi;
        }
        uint8_t *orow = out + y * width * ldo;
        for (size_t c0 = 0; c0 < channels; c0 += 16) {
            const __mmask16 m = tail_mask(channels - c0);
            __m512 w[9];
            for (int t = 0; t < 9; t++) w[t] = _mm512_maskz_loadu_ps(m, weight + (size_t)t * channels + c0);
            const __m512 b = _mm512_maskz_loadu_ps(m, bias + c0);
            __m512 carried[3][2]; // input columns x0 − 1 and x0
            for (int dy = 0; dy < 3; dy++) {
                carried[dy][0] = zero;
                carried[dy][1] = rows[dy] ? centred(rows[dy] + c0, m, zp_in) : zero;
            }
            for (size_t x0 = 0; x0 < width; x0 += 4) {
                __m512 acc[4];
                for (int dy = 0; dy < 3; dy++) {
                    __m512 col[6];
                    col[0] = carried[dy][0];
                    col[1] = carried[dy][1];
                    for (int j = 0; j < 4; j++) {
                        const size_t x = x0 + 2 + (size_t)j;
                        col[2 + j] = (rows[dy] && x - 1 < width) ? centred(rows[dy] + (x - 1) * ldi + c0, m, zp_in) : zero;
                    }
                    for (int j = 0; j < 4; j++) {
                        if (dy == 0) acc[j] = _mm512_mul_ps(col[j], w[0]);
                        else acc[j] = _mm512_fmadd_ps(col[j], w[3 * dy], acc[j]);
                        acc[j] = _mm512_fmadd_ps(col[j + 1], w[3 * dy + 1], acc[j]);
                        acc[j] = _mm512_fmadd_ps(col[j + 2], w[3 * dy + 2], acc[j]);
                    }
                    carried[dy][0] = col[4];
                    carried[dy][1] = col[5];
                }
                for (int j = 0; j < 4; j++) {
                    if (x0 + (size_t)j >= width) break;
                    const __m128i q = quantize_scaled_u8(gelu_scaled(_mm512_fmadd_ps(acc[j], scale, b), half_inv), zp_out);
                    _mm_mask_storeu_epi8(orow + (x0 + (size_t)j) * ldo + c0, m, q);
                }
            }
        }
    }
}

#endif
