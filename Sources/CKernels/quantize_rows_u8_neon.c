// AArch64 NEON version of the fp32 → u8 quantization of rows (see ck_quantize_rows_u8 in
// ckernels_q8.h); chosen by ops_dispatch.c.
//
// Byte for byte the portable version: ck_quantize_s32_neon (ck_math_neon.h) gives
// ck_quantize_u8's values, and the saturating narrows its clamps, in 5 instructions per 4 values
// where clang's vectorisation of the portable loop takes 10 (the round-to-even trick, the clamps
// as compare-and-selects, a conversion).
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"

void ck_quantize_rows_u8_neon(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                              float inv_scale, int32_t zero_point) {
    const float32x4_t scale = vdupq_n_f32(inv_scale);
    const int32x4_t zp = vdupq_n_s32(zero_point);
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * ldi;
        uint8_t *q = out + r * ldo;
        size_t c = 0;
        for (; c + 16 <= channels; c += 16) {
            const int32x4_t a = ck_quantize_s32_neon(vld1q_f32(x + c), scale, zp);
            const int32x4_t b = ck_quantize_s32_neon(vld1q_f32(x + c + 4), scale, zp);
            const int32x4_t d = ck_quantize_s32_neon(vld1q_f32(x + c + 8), scale, zp);
            const int32x4_t e = ck_quantize_s32_neon(vld1q_f32(x + c + 12), scale, zp);
            vst1q_u8(q + c, ck_pack_u8x16_neon(a, b, d, e));
        }
#pragma clang loop vectorize(disable) // the last few: a vectorised tail costs more per row than it saves
        for (; c < channels; c++) q[c] = ck_quantize_u8(x[c], inv_scale, zero_point);
    }
}
#endif
