// AArch64 NEON version of the attention output's per-head division by the softmax sums, and its
// quantization (see ck_scale_heads_quantize_u8 in ckernels_attention_q8.h); chosen by ops_dispatch.c.
//
// Byte for byte the portable version: x·f rounded, then ck_quantize_u8 of it, whose bytes
// ck_quantize_u8x16_neon gives (ck_math_neon.h) in 5 instructions per 4 where clang's vectorisation
// of the portable loop takes 10. A head is 32 channels in every SegFormer stage: two blocks of 16.
// Zero points outside 0–255 (no u8 grid's) go to the portable version.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"

void ck_scale_heads_quantize_u8_neon(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                     const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point) {
    if (!ck_u8_zero_point_neon(zero_point)) {
        ck_scale_heads_quantize_u8_portable(in, ldi, rows, heads, head_dim, factors, out, ldo, inv_scale, zero_point);
        return;
    }
    const ck_u8_grid_neon grid = ck_u8_grid_neon_make(inv_scale, zero_point);
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < heads; h++) {
            const float *x = in + r * ldi + h * head_dim;
            uint8_t *q = out + r * ldo + h * head_dim;
            const float f = factors[h * rows + r];
            const float32x4_t vf = vdupq_n_f32(f);
            size_t c = 0;
            for (; c + 16 <= head_dim; c += 16) {
                const float32x4x4_t v = vld1q_f32_x4(x + c);
                vst1q_u8(q + c, ck_quantize_u8x16_neon(vmulq_f32(v.val[0], vf), vmulq_f32(v.val[1], vf), vmulq_f32(v.val[2], vf),
                                                       vmulq_f32(v.val[3], vf), grid));
            }
#pragma clang loop vectorize(disable)
            for (; c < head_dim; c++) q[c] = ck_quantize_u8(x[c] * f, inv_scale, zero_point);
        }
}
#endif
