// AVX-512 (F, BW, VL, DQ) versions of the attention softmax and output scaling, the Mix-FFN
// depthwise conv + GELU and LayerNorm; chosen at run time by ck_ops_isa() (ops_internal.h).
#include "ops_internal.h"

#if defined(CK_HAVE_X86_KERNELS)
#include <immintrin.h>
#include <math.h>

#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

static inline CK_AVX512 __mmask16 tail_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/// Lane r of the result is OP over the 16 lanes of v[r] (OP an _mm512 add or max): a transposing
/// tree, 15 OPs and 30 shuffles for 16 rows instead of a chain of shuffles per row.
#define TRANSPOSE_REDUCE16(name, OP)                                                                                    \
    static inline CK_AVX512 __m512 name(const __m512 v[16]) {                                                           \
        __m512 pairs[8], quads[4], halves[2];                                                                           \
        for (int i = 0; i < 8; i++) /* per 128-bit block: (a0∘a2, b0∘b2, a1∘a3, b1∘b3) */                              \
            pairs[i] = OP(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));      \
        for (int i = 0; i < 4; i++) { /* per 128-bit block: rows 4i…4i+3, one partial each */                          \
            const __m512d a = _mm512_castps_pd(pairs[2 * i]), b = _mm512_castps_pd(pairs[2 * i + 1]);                   \
            quads[i] = OP(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));      \
        }                                                                                                               \
        for (int i = 0; i < 2; i++) /* blocks: (q0 0∘1, q0 2∘3, q1 0∘1, q1 2∘3) */                                     \
            halves[i] = OP(_mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),               \
                           _mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));              \
        return OP(_mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),                                  \
                  _mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));                                 \
    }
TRANSPOSE_REDUCE16(transpose_sum16, _mm512_add_ps)
TRANSPOSE_REDUCE16(transpose_max16, _mm512_max_ps)
#undef TRANSPOSE_REDUCE16

/// 255·2^t for t ≤ 0 (clamped at −126, where 2^t is still a normal float): t = n + f with
/// n an integer and |f| ≤ ½, 2^f by a degree-4 polynomial fitted for least relative
/// error (2.7e-6 in float; the portable version's e^x is good to ~1e-7), its
/// coefficients scaled by 255. At 255·2.7e-6 = 7e-4 of a step, the byte written differs
/// from the portable one only where 255·e lies that close to a rounding boundary, by 1.
/// Half the operations of the portable steps, which this loop was bound by.
static inline CK_AVX512 __m512 exp2_times255(__m512 t) {
    t = _mm512_max_ps(t, _mm512_set1_ps(-126.0f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(255.0f * 0.009570101276040077f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.05591786280274391f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.240247443318367f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.6931217908859253f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.9999992847442627f));
    return _mm512_scalef_ps(p, n);
}

// Rows go 16 at a time: each row's max and sum are first kept lane-wise, and one transposing
// tree per group turns them into the 16 rows' values (the sums are whole numbers below 2²⁴,
// exact in float in any order), so no row ends on a chain of shuffles and a division.
CK_AVX512
void ck_softmax_exp_u8_avx512(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                              float *inv_sums) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY), log2e = _mm512_set1_ps(1.44269504088896341f);
    // Bytes by packing (vpmovdb to memory is slow on Zen 4/5): packus(packus(v0, v1),
    // packus(v2, v3)) holds, in 128-bit lane j, dword k = lane j of v_k; one permute
    // puts them in order. Values are in 0...255, so the saturating packs are exact.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    float maxima[16];
    __m512 lanes[16];
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const size_t count = rows - r0 < 16 ? rows - r0 : 16;
        // Row maxima, four accumulators per row.
        for (size_t i = 0; i < count; i++) {
            const float *s = scores + (r0 + i) * lds;
            __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
            size_t c = 0;
            for (; c + 64 <= cols; c += 64) {
                m0 = _mm512_max_ps(m0, _mm512_loadu_ps(s + c));
                m1 = _mm512_max_ps(m1, _mm512_loadu_ps(s + c + 16));
                m2 = _mm512_max_ps(m2, _mm512_loadu_ps(s + c + 32));
                m3 = _mm512_max_ps(m3, _mm512_loadu_ps(s + c + 48));
            }
            for (; c < cols; c += 16) m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, tail_mask(cols - c), s + c));
            lanes[i] = _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3));
        }
        for (size_t k = count; k < 16; k++) lanes[k] = lanes[0]; // rows past the last: not used
        _mm512_storeu_ps(maxima, transpose_max16(lanes));
        for (size_t i = 0; i < count; i++) {
            const float *s = scores + (r0 + i) * lds;
            uint8_t *q = out + (r0 + i) * ldo;
            // t = (s − max)·log2 e. (As s·log2 e − max·log2 e in one FMA, the rounding of the
            // second product is amplified past any use for scores around 1e30.)
            const __m512 vmax = _mm512_set1_ps(maxima[i]);
#define EXP_BYTES(x) _mm512_cvtps_epi32(exp2_times255(_mm512_mul_ps(_mm512_sub_ps((x), vmax), log2e)))
            // e = round_even(255·exp(s − max)), written as bytes and summed.
            __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
            size_t c = 0;
            for (; c + 64 <= cols; c += 64) {
                const __m512i v0 = EXP_BYTES(_mm512_loadu_ps(s + c));
                const __m512i v1 = EXP_BYTES(_mm512_loadu_ps(s + c + 16));
                const __m512i v2 = EXP_BYTES(_mm512_loadu_ps(s + c + 32));
                const __m512i v3 = EXP_BYTES(_mm512_loadu_ps(s + c + 48));
                sum0 = _mm512_add_epi32(sum0, _mm512_add_epi32(v0, v1));
                sum1 = _mm512_add_epi32(sum1, _mm512_add_epi32(v2, v3));
                const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(v0, v1), _mm512_packus_epi32(v2, v3));
                _mm512_storeu_si512((void *)(q + c), _mm512_permutexvar_epi32(order, bytes));
            }
            for (; c < cols; c += 16) {
                const __mmask16 m = tail_mask(cols - c);
                const __m512i v = _mm512_maskz_mov_epi32(m, EXP_BYTES(_mm512_maskz_loadu_ps(m, s + c)));
                sum0 = _mm512_add_epi32(sum0, v);
                _mm512_mask_cvtepi32_storeu_epi8(q + c, m, v);
            }
#undef EXP_BYTES
            lanes[i] = _mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)); // each lane below 2²⁴: exact
        }
        for (size_t k = count; k < 16; k++) lanes[k] = lanes[0];
        // The maximum writes 255, so every sum is at least 255.
        _mm512_mask_storeu_ps(inv_sums + r0, tail_mask(count), _mm512_div_ps(_mm512_set1_ps(1.0f), transpose_sum16(lanes)));
    }
}

// ---- Depthwise 3×3 + bias + exact GELU, u8 → u8.

/// 0.5·x·(1 + erf(x/√2)). erf(z) = z·P(z²)/Q(z²) on z clamped to [−4, 4], a rational
/// fit (degrees 5/4 in z²) with absolute error ≤ 1.1e-6 in float (|erf(4)−1| is 1.5e-8);
/// the scalar version's Abramowitz & Stegun formula (≤ 1.5e-7) needs an exp and a
/// division, twice the work. The difference is 1e-6·|x|/2 at most: the u8 output
/// (resolution ~1e-2) moves only where it sits on a rounding boundary, by 1.
/// The division by Q is one vdivps (on Zen 5 the depthwise conv ran 7 % faster with it than
/// with rcp14 and a Newton step).
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
    const __m512 erf = _mm512_div_ps(_mm512_mul_ps(z, p), q);
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

/// q as floats, for 16 channels (masked lanes read nothing; a whole group takes a plain load,
/// which AMD cores run faster than a masked one).
static inline CK_AVX512 __m512 byte_values(const uint8_t *p, __mmask16 m) {
    const __m128i b = m == 0xFFFF ? _mm_loadu_si128((const __m128i *)p) : _mm_maskz_loadu_epi8(m, p);
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
}

// Two output rows at a time, 16 channels at a time, along x 4 pixels per step, with the
// 9 weights in registers and each of the 4 input rows' last two columns carried over:
// every input byte is converted once per pair of output rows. The zero point is taken
// out of the sum once, Σ w·(q − zp) = Σ w·q − zp·Σ w, so a tap costs one FMA on the
// byte's value; taps outside the map read the zero point itself (adding w·zp, which the
// correction takes back out), so borders need no other case. Each pixel's taps are summed
// row by row, left to right. The sums of a segment of up to 32 pixels go to a small
// buffer, and GELU and the quantization run over it afterwards: done in the same step,
// each pixel's two long dependency chains (9 taps, then GELU) ran back to back and the
// core waited on them. The bytes differ from the portable version's by one at most
// (other rounding of the sums, and the erf above), at rounding boundaries.
CK_AVX512
void ck_dwconv3x3_gelu_u8_avx512(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                 size_t channels, const float *weight, const float *bias,
                                 float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                                 size_t first_row, size_t row_count) {
    enum { SEGMENT = 32 };
    const __m512 scale = _mm512_set1_ps(in_scale), half_inv = _mm512_set1_ps(0.5f * out_inv_scale);
    const __m512 zp = _mm512_set1_ps((float)in_zero_point);
    const __m512i zp_out = _mm512_set1_epi32(out_zero_point);
    __m512 sums[2][SEGMENT];
    const size_t end = first_row + row_count < height ? first_row + row_count : height;
    for (size_t y = first_row; y < end; y += 2) {
        const int pair = y + 1 < end; // a second output row
        const uint8_t *rows[4];       // input rows y − 1 … y + 2; NULL outside the map (or unused)
        for (int r = 0; r < 4; r++) {
            const long sy = (long)y + r - 1;
            rows[r] = (sy < 0 || sy >= (long)height || (r == 3 && !pair)) ? NULL : in + (size_t)sy * width * ldi;
        }
        for (size_t c0 = 0; c0 < channels; c0 += 16) {
            const __mmask16 m = tail_mask(channels - c0);
            __m512 w[9], total = _mm512_setzero_ps();
            for (int t = 0; t < 9; t++) {
                w[t] = _mm512_maskz_loadu_ps(m, weight + (size_t)t * channels + c0);
                total = _mm512_add_ps(total, w[t]);
            }
            // v = scale·(Σ w·q − zp·Σ w) + b = scale·Σ w·q + (b − scale·zp·Σ w)
            const __m512 b = _mm512_fnmadd_ps(_mm512_mul_ps(scale, zp), total, _mm512_maskz_loadu_ps(m, bias + c0));
            __m512 carried[4][2]; // input columns x0 − 1 and x0
            for (int r = 0; r < 4; r++) {
                carried[r][0] = zp;
                carried[r][1] = rows[r] ? byte_values(rows[r] + c0, m) : zp;
            }
            for (size_t xs = 0; xs < width; xs += SEGMENT) {
                const size_t xe = xs + SEGMENT < width ? xs + SEGMENT : width;
                for (size_t x0 = xs; x0 < xe; x0 += 4) {
                    __m512 top[4], bottom[4]; // output rows y and y + 1
                    for (int r = 0; r < 4; r++) {
                        __m512 col[6];
                        col[0] = carried[r][0];
                        col[1] = carried[r][1];
                        for (int j = 0; j < 4; j++) {
                            const size_t x = x0 + 1 + (size_t)j;
                            col[2 + j] = (rows[r] && x < width) ? byte_values(rows[r] + x * ldi + c0, m) : zp;
                        }
                        if (r <= 2) // row dy = r of output row y
                            for (int j = 0; j < 4; j++) {
                                top[j] = r == 0 ? _mm512_mul_ps(col[j], w[0]) : _mm512_fmadd_ps(col[j], w[3 * r], top[j]);
                                top[j] = _mm512_fmadd_ps(col[j + 1], w[3 * r + 1], top[j]);
                                top[j] = _mm512_fmadd_ps(col[j + 2], w[3 * r + 2], top[j]);
                            }
                        if (r >= 1) // row dy = r − 1 of output row y + 1
                            for (int j = 0; j < 4; j++) {
                                const int dy = r - 1;
                                bottom[j] = dy == 0 ? _mm512_mul_ps(col[j], w[0]) : _mm512_fmadd_ps(col[j], w[3 * dy], bottom[j]);
                                bottom[j] = _mm512_fmadd_ps(col[j + 1], w[3 * dy + 1], bottom[j]);
                                bottom[j] = _mm512_fmadd_ps(col[j + 2], w[3 * dy + 2], bottom[j]);
                            }
                        carried[r][0] = col[4];
                        carried[r][1] = col[5];
                    }
                    for (int j = 0; j < 4; j++) {
                        sums[0][x0 - xs + (size_t)j] = _mm512_fmadd_ps(top[j], scale, b);
                        sums[1][x0 - xs + (size_t)j] = _mm512_fmadd_ps(bottom[j], scale, b);
                    }
                }
                for (int o = 0; o <= pair; o++) {
                    uint8_t *orow = out + (y + (size_t)o) * width * ldo;
                    for (size_t x = xs; x < xe; x++) {
                        const __m128i q = quantize_scaled_u8(gelu_scaled(sums[o][x - xs], half_inv), zp_out);
                        if (m == 0xFFFF) _mm_storeu_si128((__m128i *)(orow + x * ldo + c0), q); // (masked stores are slow on AMD)
                        else _mm_mask_storeu_epi8(orow + x * ldo + c0, m, q);
                    }
                }
            }
        }
    }
}

// ---- The attention output's per-head division by the softmax sums, and its quantization.
// The same steps as ck_scale_heads_quantize_u8's portable version: (x·f)·inv_scale rounded half
// to even, + zero point, clamped to a byte (values past 2³⁰ clamp to 255 there as here).
CK_AVX512
void ck_scale_heads_quantize_u8_avx512(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                       const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point) {
    const __m512 inv = _mm512_set1_ps(inv_scale), big = _mm512_set1_ps(1073741824.0f);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < heads; h++) {
            const float *x = in + r * ldi + h * head_dim;
            uint8_t *q = out + r * ldo + h * head_dim;
            const __m512 f = _mm512_set1_ps(factors[h * rows + r]);
            for (size_t c = 0; c < head_dim; c += 16) {
                const __mmask16 m = tail_mask(head_dim - c);
                const __m512 v = _mm512_min_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + c), f), inv), big);
                const __m128i b = quantize_scaled_u8(v, zp);
                if (m == 0xFFFF) _mm_storeu_si128((__m128i *)(q + c), b);
                else _mm_mask_storeu_epi8(q + c, m, b);
            }
        }
}

// ---- LayerNorm over rows of `channels` floats, 16 rows at a time.
//
// Per row the work is two sums and one pass of arithmetic; with 32 to 256 channels a
// row is 2 to 16 vectors, and reducing each row's sum across lanes on its own (a
// chain of shuffles per row, twice) cost more than the arithmetic. Here each of 16
// rows is first summed lane-wise, then one transposing tree turns the 16 partial
// vectors into one vector of 16 row sums. Sums run in float, two-pass (mean first,
// then Σ(x − mean)²), which is within a few ulp of the portable version's double sums;
// the bytes written differ from it by one at most, at rounding boundaries.

/// Means and 1/√(variance + eps) of `count` (1…16) rows of `channels` floats (row stride ld).
static inline CK_AVX512 void layer_norm_stats16(const float *in, size_t ld, size_t count, size_t channels, float eps,
                                                float mean[16], float inv[16]) {
    const __mmask16 tail = tail_mask(channels % 16 ? channels % 16 : 16);
    const size_t full = (channels - 1) / 16; // whole vectors before the last (possibly partial) one
    // The first sum is of x − x₀ (x₀ the row's first value): rows far from zero, as
    // residual streams can be, then lose nothing to float rounding of a large sum.
    __m512 partial[16];
    float first[16];
    for (size_t r = 0; r < 16; r++) {
        const float *x = in + (r < count ? r : count - 1) * ld;
        first[r] = x[0];
        const __m512 x0 = _mm512_set1_ps(x[0]);
        __m512 a = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + full * 16), x0), b = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 2 <= full; k += 2) {
            a = _mm512_add_ps(a, _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), x0));
            b = _mm512_add_ps(b, _mm512_sub_ps(_mm512_loadu_ps(x + k * 16 + 16), x0));
        }
        if (k < full) a = _mm512_add_ps(a, _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), x0));
        partial[r] = _mm512_add_ps(a, b);
    }
    const __m512 n = _mm512_set1_ps((float)channels);
    _mm512_storeu_ps(mean, _mm512_add_ps(_mm512_loadu_ps(first), _mm512_div_ps(transpose_sum16(partial), n)));
    for (size_t r = 0; r < 16; r++) {
        const float *x = in + (r < count ? r : count - 1) * ld;
        const __m512 m = _mm512_set1_ps(mean[r]);
        const __m512 last = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + full * 16), m);
        __m512 a = _mm512_mul_ps(last, last), b = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 2 <= full; k += 2) {
            const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), m), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + k * 16 + 16), m);
            a = _mm512_fmadd_ps(d0, d0, a);
            b = _mm512_fmadd_ps(d1, d1, b);
        }
        if (k < full) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), m);
            a = _mm512_fmadd_ps(d, d, a);
        }
        partial[r] = _mm512_add_ps(a, b);
    }
    const __m512 variance = _mm512_div_ps(transpose_sum16(partial), n);
    _mm512_storeu_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(_mm512_add_ps(variance, _mm512_set1_ps(eps)))));
}

/// LayerNorm of `rows` rows into floats (`out_q` NULL) or quantized bytes (rows ldo apart in out_q).
static inline CK_AVX512 __attribute__((always_inline)) void
layer_norm_rows(const float *in, float *out_f, uint8_t *out_q, size_t ldo, size_t rows, size_t channels, const float *gamma,
                const float *beta, float eps, float inv_scale, int32_t zero_point) {
    const __m512 scale = _mm512_set1_ps(inv_scale);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    float mean[16], inv[16];
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const size_t count = rows - r0 < 16 ? rows - r0 : 16;
        layer_norm_stats16(in + r0 * channels, channels, count, channels, eps, mean, inv);
        for (size_t r = 0; r < count; r++) {
            const float *x = in + (r0 + r) * channels;
            const __m512 m = _mm512_set1_ps(mean[r]), s = _mm512_set1_ps(inv[r]);
            for (size_t c = 0; c < channels; c += 16) {
                const __mmask16 k = tail_mask(channels - c);
                const __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), m), s),
                                                 _mm512_maskz_loadu_ps(k, gamma + c), _mm512_maskz_loadu_ps(k, beta + c));
                if (out_q) _mm_mask_storeu_epi8(out_q + (r0 + r) * ldo + c, k, quantize_scaled_u8(_mm512_mul_ps(y, scale), zp));
                else _mm512_mask_storeu_ps(out_f + (r0 + r) * channels + c, k, y);
            }
        }
    }
}

CK_AVX512
void ck_layer_norm_quantize_u8_avx512(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                      const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point) {
    layer_norm_rows(in, NULL, out, ldo, rows, channels, gamma, beta, eps, inv_scale, zero_point);
}

CK_AVX512
void ck_layer_norm_f32_avx512(const float *in, float *out, size_t rows, size_t channels, const float *gamma, const float *beta,
                              float eps) {
    layer_norm_rows(in, out, NULL, 0, rows, channels, gamma, beta, eps, 1.0f, 0);
}

#endif
