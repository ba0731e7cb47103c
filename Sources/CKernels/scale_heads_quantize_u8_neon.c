// AArch64 NEON version of the attention output's per-head division by the softmax sums, and its
// quantization (see ck_scale_heads_quantize_u8 in ckernels_attention_q8.h); chosen by ops_dispatch.c.
//
// Byte for byte the portable version: x·f rounded, then ck_quantize_u8 of it, whose values
// ck_quantize_s32_neon gives (ck_math_neon.h) in 5 instructions per 4 where clang's vectorisation
// of the portable loop takes 10. A head is 32 channels in every SegFormer stage: two blocks of 16.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"

void ck_scale_heads_quantize_u8_neon(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                     const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point) {
    const float32x4_t scale = vdupq_n_f32(inv_scale);
    const int32x4_t zp = vdupq_n_s32(zero_point);
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < heads; h++) {
            const float *x = in + r * ldi + h * head_dim;
            uint8_t *q = out + r * ldo + h * head_dim;
            const float f = factors[h * rows + r];
            const float32x4_t vf = vdupq_n_f32(f);
            size_t c = 0;
            for (; c + 16 <= head_dim; c += 16) {
                const int32x4_t a = ck_quantize_s32_neon(vmulq_f32(vld1q_f32(x + c), vf), scale, zp);
                const int32x4_t b = ck_quantize_s32_neon(vmulq_f32(vld1q_f32(x + c + 4), vf), scale, zp);
                const int32x4_t d = ck_quantize_s32_neon(vmulq_f32(vld1q_f32(x + c + 8), vf), scale, zp);
                const int32x4_t e = ck_quantize_s32_neon(vmulq_f32(vld1q_f32(x + c + 12), vf), scale, zp);
                vst1q_u8(q + c, ck_pack_u8x16_neon(a, b, d, e));
            }
#pragma clang loop vectorize(disable)
            for (; c < head_dim; c++) q[c] = ck_quantize_u8(x[c] * f, inv_scale, zero_point);
        }
}
#endif
