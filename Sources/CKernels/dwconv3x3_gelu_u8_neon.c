// AArch64 NEON version of the Mix-FFN's depthwise 3×3 convolution + bias + exact GELU, u8 → u8
// (see ck_dwconv3x3_gelu_u8 in ckernels_q8.h); chosen by ops_dispatch.c.
//
// Bit for bit the portable version as clang builds it for AArch64 (ck_math_neon.h says why
// that is possible): per channel the taps are summed in the same order (rows top to bottom,
// left to right, taps outside the map skipped, not added as zero), each as one fused
// multiply-add of (q − zp)·w onto the sum, then the same GELU and quantization. What changes
// is where the work goes: 16 channels at a time with the 9 sums in 4 registers (the portable
// loop keeps them in the scratch array, a load and a store per tap), q − zp taken in 16-bit
// integers (exact: the same value as (float)q − zp) and converted once, and the A&S erf's
// exp and division on 4 lanes, and the quantization in 5 instructions per 4 values (ck_quantize_s32_neon).
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math_neon.h"

#include <string.h>

/// The 16 channels at `c` of one output pixel from its taps (`count` of them, in order).
static inline void block16(const uint8_t *const *taps, const float *const *wt, size_t count, size_t c, uint8x8_t zp8,
                           const float *bias, float in_scale, float out_inv_scale, int32_t out_zp, uint8_t *o) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (size_t t = 0; t < count; t++) {
        const uint8x16_t q = vld1q_u8(taps[t] + c);
        // (q − zp) mod 2¹⁶ reinterpreted as int16 is q − zp exactly (|q − zp| ≤ 255).
        const int16x8_t lo = vreinterpretq_s16_u16(vsubl_u8(vget_low_u8(q), zp8));
        const int16x8_t hi = vreinterpretq_s16_u16(vsubl_high_u8(q, vcombine_u8(zp8, zp8)));
        const float *w = wt[t] + c;
        acc[0] = vfmaq_f32(acc[0], vcvtq_f32_s32(vmovl_s16(vget_low_s16(lo))), vld1q_f32(w));
        acc[1] = vfmaq_f32(acc[1], vcvtq_f32_s32(vmovl_high_s16(lo)), vld1q_f32(w + 4));
        acc[2] = vfmaq_f32(acc[2], vcvtq_f32_s32(vmovl_s16(vget_low_s16(hi))), vld1q_f32(w + 8));
        acc[3] = vfmaq_f32(acc[3], vcvtq_f32_s32(vmovl_high_s16(hi)), vld1q_f32(w + 12));
    }
    int32x4_t u[4];
    for (int i = 0; i < 4; i++) {
        const float32x4_t x = vfmaq_f32(vld1q_f32(bias + c + 4 * i), acc[i], vdupq_n_f32(in_scale)); // acc·s + b, fused
        u[i] = ck_quantize_s32_neon(ck_gelu_neon(x), vdupq_n_f32(out_inv_scale), vdupq_n_s32(out_zp));
    }
    vst1q_u8(o + c, ck_pack_u8x16_neon(u[0], u[1], u[2], u[3]));
}

void ck_dwconv3x3_gelu_u8_neon(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                               size_t channels, const float *weight, const float *bias, float in_scale,
                               int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point, size_t first_row,
                               size_t row_count, float *scratch) {
    (void)scratch; // the sums stay in registers
    const size_t full = channels / 16 * 16, rest = channels - full;
    const uint8x8_t zp8 = vdup_n_u8((uint8_t)in_zero_point);
    const int32_t out_zp = out_zero_point;
    // A last block of fewer than 16 channels runs on zero-padded copies of its taps, weights and
    // bias (the arrays hold only `channels` entries), and stores only its own channels.
    float wpad[9][16], bpad[16];
    uint8_t tpad[9][16], opad[16];
    const float *wpad_rows[9];
    if (rest) {
        memset(wpad, 0, sizeof wpad);
        memset(bpad, 0, sizeof bpad);
        memset(tpad, 0, sizeof tpad);
        for (size_t t = 0; t < 9; t++) {
            for (size_t i = 0; i < rest; i++) wpad[t][i] = weight[t * channels + full + i];
            wpad_rows[t] = wpad[t];
        }
        for (size_t i = 0; i < rest; i++) bpad[i] = bias[full + i];
    }
    for (size_t y = first_row; y < first_row + row_count && y < height; y++) {
        for (size_t x = 0; x < width; x++) {
            const uint8_t *taps[9];
            const float *wt[9], *wt_rest[9];
            size_t count = 0;
            for (int dy = -1; dy <= 1; dy++) {
                const long sy = (long)y + dy;
                if (sy < 0 || sy >= (long)height) continue;
                for (int dx = -1; dx <= 1; dx++) {
                    const long sx = (long)x + dx;
                    if (sx < 0 || sx >= (long)width) continue;
                    const size_t tap = (size_t)((dy + 1) * 3 + (dx + 1));
                    taps[count] = in + ((size_t)sy * width + (size_t)sx) * ldi;
                    wt[count] = weight + tap * channels;
                    if (rest) wt_rest[count] = wpad_rows[tap];
                    count++;
                }
            }
            uint8_t *o = out + (y * width + x) * ldo;
            for (size_t c = 0; c < full; c += 16)
                block16(taps, wt, count, c, zp8, bias, in_scale, out_inv_scale, out_zp, o);
            if (rest) {
                const uint8_t *taps_rest[9];
                for (size_t t = 0; t < count; t++) {
                    for (size_t i = 0; i < rest; i++) tpad[t][i] = taps[t][full + i];
                    taps_rest[t] = tpad[t];
                }
                block16(taps_rest, wt_rest, count, 0, zp8, bpad, in_scale, out_inv_scale, out_zp, opad);
                for (size_t i = 0; i < rest; i++) o[full + i] = opad[i];
            }
        }
    }
}
#endif
