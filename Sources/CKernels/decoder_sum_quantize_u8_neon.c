// AArch64 NEON version of the folded decoder's sum (see ck_decoder_sum_quantize_u8 in
// ckernels_q8.h); chosen by ops_dispatch.c.
//
// Bit for bit the portable version as clang builds it for AArch64: the same taps and weights
// (ck_bilinear_taps), each map's rows blended vertically as w0·r0 + wy·r1 with the second
// product rounded and the first fused onto it (clang contracts the left product of a + b of
// products), each pixel's channels summed map by map in the same order (v + (w0·a + w1·b), the
// inner sum contracted the same way), then + bias, ReLU and ck_quantize_u8. What changes: 16
// channels at a time with the maps' terms in registers, no aliasing checks per pixel, the sum
// of every map count kept in registers (the portable loop adds into the band when there are
// not 3 maps), and the quantization in 3 instructions per 4 values. The band is only read.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"
#include "ckernels_q8.h"

/// The 4 channels at k of one pixel: band + Σ_i (w0_i·a_i + w1_i·b_i) + bias, ReLU, quantized.
static inline __attribute__((always_inline)) int32x4_t pixel4(const float *o, size_t map_count, const float *const *a,
                                                              const float *const *b, const float32x4_t *w0,
                                                              const float32x4_t *w1, const float *bias, size_t k,
                                                              float32x4_t scale, int32x4_t zp) {
    float32x4_t v = vld1q_f32(o + k);
    for (size_t i = 0; i < map_count; i++)
        v = vaddq_f32(v, vfmaq_f32(vmulq_f32(w1[i], vld1q_f32(b[i] + k)), w0[i], vld1q_f32(a[i] + k)));
    v = vaddq_f32(v, vld1q_f32(bias + k));
    v = vmaxnmq_f32(v, vdupq_n_f32(0.0f)); // v > 0 ? v : 0 (NaN and −0 give +0 there and here)
    // ck_quantize_s32_neon without its NaN mask: after the ReLU no lane is NaN (v·inv_scale with v ≥ 0 or +∞ and
    // inv_scale a grid's, positive and finite).
    return vqaddq_s32(vcvtnq_s32_f32(vmulq_f32(v, scale)), zp);
}

/// One output pixel's channels; map_count is a constant where the caller passes one (3: the
/// four-stage encoders), so the loop over maps unrolls.
static inline __attribute__((always_inline)) void pixel(const float *o, size_t map_count, const float *const *a,
                                                        const float *const *b, const float *w0s, const float *w1s,
                                                        size_t channels, const float *bias, float inv_scale,
                                                        int32_t zero_point, uint8_t *q) {
    float32x4_t w0[CK_DECODER_MAPS_MAX], w1[CK_DECODER_MAPS_MAX];
    for (size_t i = 0; i < map_count; i++) w0[i] = vdupq_n_f32(w0s[i]), w1[i] = vdupq_n_f32(w1s[i]);
    const float32x4_t scale = vdupq_n_f32(inv_scale);
    const int32x4_t zp = vdupq_n_s32(zero_point);
    size_t k = 0;
    for (; k + 16 <= channels; k += 16) {
        const int32x4_t r0 = pixel4(o, map_count, a, b, w0, w1, bias, k, scale, zp);
        const int32x4_t r1 = pixel4(o, map_count, a, b, w0, w1, bias, k + 4, scale, zp);
        const int32x4_t r2 = pixel4(o, map_count, a, b, w0, w1, bias, k + 8, scale, zp);
        const int32x4_t r3 = pixel4(o, map_count, a, b, w0, w1, bias, k + 12, scale, zp);
        vst1q_u8(q + k, ck_pack_u8x16_neon(r0, r1, r2, r3));
    }
#pragma clang loop vectorize(disable) // the last few: a vectorised tail costs more per row than it saves
    for (; k < channels; k++) {
        float v = o[k];
        for (size_t i = 0; i < map_count; i++) v += w0s[i] * a[i][k] + w1s[i] * b[i][k];
        v += bias[k];
        q[k] = ck_quantize_u8(v > 0.0f ? v : 0.0f, inv_scale, zero_point);
    }
}

void ck_decoder_sum_quantize_u8_neon(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                     const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                     size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                     int32_t zero_point, uint8_t *out, size_t ldo, float *scratch) {
    const size_t end_row = first_row + row_count < out_height ? first_row + row_count : out_height;
    for (size_t y = first_row; y < end_row; y++) {
        // Each map's two source rows blended vertically for this output row.
        float *blended[CK_DECODER_MAPS_MAX];
        float *next = scratch;
        for (size_t i = 0; i < map_count; i++) {
            size_t y0, y1;
            float wy;
            ck_bilinear_taps(out_height, heights[i], y, &y0, &y1, &wy);
            const float *r0 = maps[i] + y0 * widths[i] * channels, *r1 = maps[i] + y1 * widths[i] * channels;
            const float w0 = 1.0f - wy;
            const float32x4_t v0 = vdupq_n_f32(w0), vy = vdupq_n_f32(wy);
            const size_t n = widths[i] * channels;
            size_t k = 0;
            for (; k + 8 <= n; k += 8) {
                vst1q_f32(next + k, vfmaq_f32(vmulq_f32(vy, vld1q_f32(r1 + k)), v0, vld1q_f32(r0 + k)));
                vst1q_f32(next + k + 4, vfmaq_f32(vmulq_f32(vy, vld1q_f32(r1 + k + 4)), v0, vld1q_f32(r0 + k + 4)));
            }
#pragma clang loop vectorize(disable)
            for (; k < n; k++) next[k] = w0 * r0[k] + wy * r1[k];
            blended[i] = next;
            next += n;
        }
        for (size_t x = 0; x < out_width; x++) {
            const float *o = band + ((y - first_row) * out_width + x) * channels;
            const float *a[CK_DECODER_MAPS_MAX], *b[CK_DECODER_MAPS_MAX];
            float w0[CK_DECODER_MAPS_MAX], w1[CK_DECODER_MAPS_MAX];
            ck_decoder_column_taps(map_count, blended, widths, channels, out_width, x, a, b, w0, w1);
            uint8_t *q = out + (y * out_width + x) * ldo;
            if (map_count == 3) pixel(o, 3, a, b, w0, w1, channels, bias, inv_scale, zero_point, q);
            else pixel(o, map_count, a, b, w0, w1, channels, bias, inv_scale, zero_point, q);
        }
    }
}
#endif
