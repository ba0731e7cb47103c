// AArch64 NEON version of the attention output's per-head scaling + quantization (see
// ck_scale_heads_quantize_u8 in ckernels_attention_q8.h); chosen by ops_dispatch.c.
// Bit for bit the portable version: x·f rounded, then ck_quantize_u8's steps (the product with
// 1/scale rounded before the round-to-even shift; see ck_math_neon.h), no fused operation.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math_neon.h"

void ck_scale_heads_quantize_u8_neon(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                     const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point) {
    const float zp = (float)zero_point;
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < heads; h++) {
            const float *x = in + r * ldi + h * head_dim;
            uint8_t *q = out + r * ldo + h * head_dim;
            const float32x4_t f = vdupq_n_f32(factors[h * rows + r]);
            size_t c = 0;
            for (; c + 16 <= head_dim; c += 16) {
                uint32x4_t u[4];
                for (int i = 0; i < 4; i++) u[i] = ck_quantize_u8_neon(vmulq_f32(vld1q_f32(x + c + 4 * i), f), inv_scale, zp);
                vst1q_u8(q + c, ck_narrow_u8x16_neon(u[0], u[1], u[2], u[3]));
            }
            for (; c < head_dim; c += 4) { // the last 1–15 channels, 4 at a time through a padded copy
                float t[4] = {0, 0, 0, 0};
                const size_t n = head_dim - c < 4 ? head_dim - c : 4;
                for (size_t i = 0; i < n; i++) t[i] = x[c + i];
                uint32_t v[4];
                vst1q_u32(v, ck_quantize_u8_neon(vmulq_f32(vld1q_f32(t), f), inv_scale, zp));
                for (size_t i = 0; i < n; i++) q[c + i] = (uint8_t)v[i];
            }
        }
}
#endif
