#include "ckernels_attention_q8.h"
#include "ckernels_fp32.h"
#include "ops_dispatch.h"

#include <math.h>

#include "ck_math.h"


CK_VECTOR_CLONES
static void quantize_row_s8(const float *x, size_t n, float inv, int8_t *q) {
    for (size_t c = 0; c < n; c++) q[c] = (int8_t)(int32_t)ck_round_even(x[c] * inv);
}

float ck_quantize_symmetric_s8(const float *in, size_t ldi, size_t rows, size_t cols, int8_t *out, size_t ldo, int transpose) {
    float largest = 0.0f;
    for (size_t r = 0; r < rows; r++) {
        const float a = ck_max_abs_f32(in + r * ldi, cols);
        largest = a > largest ? a : largest;
    }
    const float scale = largest > 0.0f ? largest / 127.0f : 1.0f;
    const float inv = 1.0f / scale;
    if (!transpose) {
        for (size_t r = 0; r < rows; r++) quantize_row_s8(in + r * ldi, cols, inv, out + r * ldo);
        return scale;
    }
    // Transposed: 16 rows at a time into a row-major block, then each column's 16 bytes to
    // their output row (written straight, the bytes went one at a time to rows ldo apart).
    enum { ROWS = 16, COLS = 256 };
    int8_t block[ROWS][COLS];
    for (size_t r0 = 0; r0 < rows; r0 += ROWS) {
        const size_t nr = rows - r0 < ROWS ? rows - r0 : ROWS;
        for (size_t c0 = 0; c0 < cols; c0 += COLS) {
            const size_t nc = cols - c0 < COLS ? cols - c0 : COLS;
            for (size_t k = 0; k < nr; k++) quantize_row_s8(in + (r0 + k) * ldi + c0, nc, inv, block[k]);
            for (size_t c = 0; c < nc; c++)
                for (size_t k = 0; k < nr; k++) out[(c0 + c) * ldo + r0 + k] = block[k][c];
        }
    }
    return scale;
}

void ck_row_sums_s8(const int8_t *b, size_t n, size_t k, size_t ldb, int32_t multiplier, int32_t *sums) {
    for (size_t j = 0; j < n; j++) {
        int32_t sum = 0;
        for (size_t i = 0; i < k; i++) sum += b[j * ldb + i];
        sums[j] = multiplier * sum;
    }
}

// exp without a libm call (as ck_expf in ck_math.h, one term shorter), accurate far beyond the u8 output.
static inline float attention_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    const float n = ck_round_even(x * 1.44269504088896341f);
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { uint32_t i; float f; } scale = { .i = (uint32_t)((int32_t)n + 127) << 23 };
    return p * scale.f;
}

// The portable version, and the reference of the x86 ones: softmax_exp_u8_avx2.c takes the same
// steps and writes the same bytes; softmax_exp_u8_avx512.c uses a shorter exp and may write a
// byte one step off where 255·e sits within 7e-4 of a rounding boundary. The max runs in 16 lanes: as a
// single `max = s > max ? s : max` chain it does not vectorise, and that chain was
// most of this kernel's time.
CK_VECTOR_CLONES
void ck_softmax_exp_u8_portable(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                                    float *inv_sums) {
#pragma clang fp reassociate(on)
    for (size_t r = 0; r < rows; r++) {
        const float *s = scores + r * lds;
        uint8_t *q = out + r * ldo;
        float lanes[16];
        for (int k = 0; k < 16; k++) lanes[k] = -INFINITY;
        size_t c = 0;
        for (; c + 16 <= cols; c += 16)
            for (int k = 0; k < 16; k++) lanes[k] = s[c + k] > lanes[k] ? s[c + k] : lanes[k];
        for (; c < cols; c++) lanes[0] = s[c] > lanes[0] ? s[c] : lanes[0];
        float max = lanes[0];
        for (int k = 1; k < 16; k++) max = lanes[k] > max ? lanes[k] : max;
        int32_t sum = 0;
        for (c = 0; c < cols; c++) {
            const int32_t v = (int32_t)ck_round_even(attention_expf(s[c] - max) * 255.0f);
            q[c] = (uint8_t)v;
            sum += v;
        }
        inv_sums[r] = 1.0f / (float)sum;  // the maximum writes 255, so sum ≥ 255
    }
}

// The portable version; x86 with AVX-512 runs scale_heads_quantize_u8_avx512.c, AArch64
// scale_heads_quantize_u8_neon.c, which write the same bytes.
CK_VECTOR_CLONES
void ck_scale_heads_quantize_u8_portable(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                             const float *factors, uint8_t *out, size_t ldo, float inv_scale,
                                             int32_t zero_point) {
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < heads; h++) {
            const float *x = in + r * ldi + h * head_dim;
            uint8_t *q = out + r * ldo + h * head_dim;
            const float f = factors[h * rows + r];
            for (size_t c = 0; c < head_dim; c++) q[c] = ck_quantize_u8(x[c] * f, inv_scale, zero_point);
        }
}
