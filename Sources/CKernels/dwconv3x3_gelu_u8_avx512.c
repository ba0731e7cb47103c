// AVX-512 version of the Mix-FFN's depthwise 3×3 convolution + bias + exact GELU, u8 → u8
// (see ck_dwconv3x3_gelu_u8 in ckernels_q8.h); chosen by ops_dispatch.c.
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include "ck_math.h"
#include "vectors_avx512.h"

/// ck_gelu_scaled (ck_math.h) on 16 lanes, operation for operation: gelu(x)·out_scale, half_scale = 0.5·out_scale.
static inline CK_AVX512 __m512 gelu_scaled(__m512 x, __m512 half_scale) {
    const __m512 sign = _mm512_set1_ps(-0.0f);
    // t = 4·|x|/√2 below 16; u = t − ⌊t⌋ exactly (vreduceps, rounding down); the piece is ⌊t⌋.
    const __m512 t = _mm512_min_ps(_mm512_mul_ps(_mm512_andnot_ps(sign, x), _mm512_set1_ps(2.82842712474619009760f)),
                                   _mm512_set1_ps(15.999999f));
    const __m512i piece = _mm512_cvttps_epi32(t);
    const __m512 u = _mm512_reduce_ps(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    __m512 p = _mm512_permutexvar_ps(piece, _mm512_load_ps(ck_erf_pieces[4]));
    p = _mm512_fmadd_ps(p, u, _mm512_permutexvar_ps(piece, _mm512_load_ps(ck_erf_pieces[3])));
    p = _mm512_fmadd_ps(p, u, _mm512_permutexvar_ps(piece, _mm512_load_ps(ck_erf_pieces[2])));
    p = _mm512_fmadd_ps(p, u, _mm512_permutexvar_ps(piece, _mm512_load_ps(ck_erf_pieces[1])));
    p = _mm512_fmadd_ps(p, u, _mm512_permutexvar_ps(piece, _mm512_load_ps(ck_erf_pieces[0])));
    // p ≥ 0 (erf of |x|, the first piece's constant term is +2e-7): x's sign bit or-ed in is erf(x/√2).
    const __m512 erf = _mm512_or_ps(p, _mm512_and_ps(x, sign));
    const __m512 hx = _mm512_mul_ps(x, half_scale);
    return _mm512_fmadd_ps(hx, erf, hx);
}

/// q as floats, for 16 channels (masked lanes read nothing; a whole group takes a plain load,
/// which AMD cores run faster than a masked one).
static inline CK_AVX512 __m512 byte_values(const uint8_t *p, __mmask16 m) {
    const __m128i b = m == 0xFFFF ? _mm_loadu_si128((const __m128i *)p) : _mm_maskz_loadu_epi8(m, p);
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(b));
}

/// Four pixels x0 … x0 + 3 of output rows y (top) and y + 1 (bottom), 16 channels at c0, from input rows
/// y − 1 … y + 2 (`rows`, NULL outside the map) and the two columns carried over from the step before;
/// writes scale·sum + b to top_sums and bottom_sums. `inside` (a constant where it is inlined): every row
/// exists, x0 + 4 < width and the group is whole, so the loads need no tests.
static inline CK_AVX512 __attribute__((always_inline)) void step(const uint8_t *const rows[4], int inside, size_t x0, size_t width,
                                                                 size_t ldi, size_t c0, __mmask16 m, __m512 zp, const __m512 w[9],
                                                                 __m512 carried[4][2], __m512 *top_sums, __m512 *bottom_sums,
                                                                 __m512 scale, __m512 b) {
    __m512 top[4], bottom[4]; // output rows y and y + 1
    for (int r = 0; r < 4; r++) {
        __m512 col[6];
        col[0] = carried[r][0];
        col[1] = carried[r][1];
        for (int j = 0; j < 4; j++) {
            const size_t x = x0 + 1 + (size_t)j;
            if (inside) col[2 + j] = byte_values(rows[r] + x * ldi + c0, 0xFFFF);
            else col[2 + j] = (rows[r] && x < width) ? byte_values(rows[r] + x * ldi + c0, m) : zp;
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
        top_sums[j] = _mm512_fmadd_ps(top[j], scale, b);
        bottom_sums[j] = _mm512_fmadd_ps(bottom[j], scale, b);
    }
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
// core waited on them. The GELU is the portable version's; the bytes differ from it by one
// at most, at rounding boundaries: the sums round otherwise (the zero point taken out once).
CK_AVX512
void ck_dwconv3x3_gelu_u8_avx512(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                 size_t channels, const float *weight, const float *bias,
                                 float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                                 size_t first_row, size_t row_count, float *scratch) {
    (void)scratch; // the sums of a segment stay in registers and a small array on the stack
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
        const int all_rows = rows[0] && rows[1] && rows[2] && rows[3];
        for (size_t c0 = 0; c0 < channels; c0 += 16) {
            const __mmask16 m = tail_mask(channels - c0);
            const int whole_group = m == 0xFFFF;
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
                    // Inside the map with a whole group of channels (most steps), the loads need no tests.
                    if (whole_group && all_rows && x0 + 4 < width)
                        step(rows, 1, x0, width, ldi, c0, m, zp, w, carried, sums[0] + (x0 - xs), sums[1] + (x0 - xs), scale, b);
                    else
                        step(rows, 0, x0, width, ldi, c0, m, zp, w, carried, sums[0] + (x0 - xs), sums[1] + (x0 - xs), scale, b);
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
#endif
