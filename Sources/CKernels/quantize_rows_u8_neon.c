// AArch64 NEON version of the fp32 → u8 quantization of rows (see ck_quantize_rows_u8 in
// ckernels_q8.h); chosen by ops_dispatch.c.
//
// Byte for byte the portable version: ck_quantize_u8x16_neon (ck_math_neon.h) gives ck_quantize_u8's
// bytes in 5 instructions per 4 values where clang's vectorisation of the portable loop takes 10 (the
// round-to-even trick, the clamps as compare-and-selects, a conversion). Zero points outside 0–255 (no
// u8 grid's) go to the portable version.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"

void ck_quantize_rows_u8_neon(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                              float inv_scale, int32_t zero_point) {
    if (!ck_u8_zero_point_neon(zero_point)) {
        ck_quantize_rows_u8_portable(in, ldi, out, ldo, rows, channels, inv_scale, zero_point);
        return;
    }
    const ck_u8_grid_neon grid = ck_u8_grid_neon_make(inv_scale, zero_point);
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * ldi;
        uint8_t *q = out + r * ldo;
        size_t c = 0;
        for (; c + 16 <= channels; c += 16) {
            const float32x4x4_t v = vld1q_f32_x4(x + c);
            vst1q_u8(q + c, ck_quantize_u8x16_neon(v.val[0], v.val[1], v.val[2], v.val[3], grid));
        }
#pragma clang loop vectorize(disable) // the last few: a vectorised tail costs more per row than it saves
        for (; c < channels; c++) q[c] = ck_quantize_u8(x[c], inv_scale, zero_point);
    }
}
#endif
