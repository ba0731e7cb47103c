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

/// The 4 channels at k of one pixel: ReLU(band + Σ_i (w0_i·a_i + w1_i·b_i) + bias).
static inline __attribute__((always_inline)) float32x4_t pixel4(const float *o, size_t map_count, const float *const *a,
                                                                const float *const *b, const float32x4_t *w0,
                                                                const float32x4_t *w1, const float *bias, size_t k) {
    float32x4_t v = vld1q_f32(o + k);
    for (size_t i = 0; i < map_count; i++)
        v = vaddq_f32(v, vfmaq_f32(vmulq_f32(w1[i], vld1q_f32(b[i] + k)), w0[i], vld1q_f32(a[i] + k)));
    v = vaddq_f32(v, vld1q_f32(bias + k));
    return vmaxnmq_f32(v, vdupq_n_f32(0.0f)); // v > 0 ? v : 0 (NaN and −0 give +0 there and here)
}

/// 16 floats of a map's rows blended vertically, *o = w0·*r0 + wy·*r1 (the second product rounded, the first fused onto
/// it), all three pointers advanced: in assembly, one ld1 or st1 post-indexed per row, 11 instructions per 16 floats
/// where clang's loop (two ldp per row and a stp per 8 floats, addressed by k) took 20.
static inline __attribute__((always_inline)) void blend16(const float **r0, const float **r1, float **o, float32x4_t w0,
                                                          float32x4_t wy) {
    __asm__ volatile("ld1 {v4.4s, v5.4s, v6.4s, v7.4s}, [%[r1]], #64\n\t"
                     "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[r0]], #64\n\t"
                     "fmul v4.4s, v4.4s, %[wy].4s\n\t"
                     "fmul v5.4s, v5.4s, %[wy].4s\n\t"
                     "fmul v6.4s, v6.4s, %[wy].4s\n\t"
                     "fmul v7.4s, v7.4s, %[wy].4s\n\t"
                     "fmla v4.4s, v16.4s, %[w0].4s\n\t"
                     "fmla v5.4s, v17.4s, %[w0].4s\n\t"
                     "fmla v6.4s, v18.4s, %[w0].4s\n\t"
                     "fmla v7.4s, v19.4s, %[w0].4s\n\t"
                     "st1 {v4.4s, v5.4s, v6.4s, v7.4s}, [%[o]], #64"
                     : [r0] "+r"(*r0), [r1] "+r"(*r1), [o] "+r"(*o)
                     : [w0] "w"(w0), [wy] "w"(wy)
                     : "memory", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19");
}

/// pixel's 16-channel step for 3 maps, in assembly: clang, given the 7 loads of 16 floats per step, hoisted them
/// all, spilled, and addressed every map's row by k (two ldp and an add per 16 floats); here each is one ld1 post-
/// indexed and the maps' weights are lanes 0–2 of two registers (fmul/fmla by element), 69 instructions per 16
/// channels where clang's took 92. Operation for operation pixel4's: per map the product w1·b rounded and w0·a fused
/// onto it, added to the sum, the maps in order; + bias, fmaxnm with +0 (the ReLU), then ck_quantize_u8x16_neon's
/// steps but its fmaxnm with −zp (after the ReLU no value is below 0, none NaN).
#define CK_DECODER_MAP3(PA, PB, LANE)                                                                           \
    "ld1 {v4.4s, v5.4s, v6.4s, v7.4s}, [%[" PA "]], #64\n\t"                                                     \
    "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[" PB "]], #64\n\t"                                                 \
    "fmul v20.4s, v16.4s, %[w1].s[" LANE "]\n\t"                                                                \
    "fmul v21.4s, v17.4s, %[w1].s[" LANE "]\n\t"                                                                \
    "fmul v22.4s, v18.4s, %[w1].s[" LANE "]\n\t"                                                                \
    "fmul v23.4s, v19.4s, %[w1].s[" LANE "]\n\t"                                                                \
    "fmla v20.4s, v4.4s, %[w0].s[" LANE "]\n\t"                                                                 \
    "fmla v21.4s, v5.4s, %[w0].s[" LANE "]\n\t"                                                                 \
    "fmla v22.4s, v6.4s, %[w0].s[" LANE "]\n\t"                                                                 \
    "fmla v23.4s, v7.4s, %[w0].s[" LANE "]\n\t"                                                                 \
    "fadd v0.4s, v0.4s, v20.4s\n\t"                                                                             \
    "fadd v1.4s, v1.4s, v21.4s\n\t"                                                                             \
    "fadd v2.4s, v2.4s, v22.4s\n\t"                                                                             \
    "fadd v3.4s, v3.4s, v23.4s\n\t"

static inline __attribute__((always_inline)) void pixel3_step16(const float **o, const float **a0, const float **b0,
                                                                const float **a1, const float **b1, const float **a2,
                                                                const float **b2, const float **bias, uint8_t **q,
                                                                float32x4_t w0, float32x4_t w1, float32x4_t scale,
                                                                int16x8_t zp) {
    __asm__ volatile("ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [%[o]], #64\n\t"                                        //
                     CK_DECODER_MAP3("a0", "b0", "0") CK_DECODER_MAP3("a1", "b1", "1") CK_DECODER_MAP3("a2", "b2", "2") //
                     "ld1 {v4.4s, v5.4s, v6.4s, v7.4s}, [%[bias]], #64\n\t"                                         //
                     "fadd v0.4s, v0.4s, v4.4s\n\t"                                                                 //
                     "fadd v1.4s, v1.4s, v5.4s\n\t"                                                                 //
                     "fadd v2.4s, v2.4s, v6.4s\n\t"                                                                 //
                     "fadd v3.4s, v3.4s, v7.4s\n\t"                                                                 //
                     "movi v4.2d, #0\n\t"                                                                           //
                     "fmaxnm v0.4s, v0.4s, v4.4s\n\t"                                                               //
                     "fmaxnm v1.4s, v1.4s, v4.4s\n\t"                                                               //
                     "fmaxnm v2.4s, v2.4s, v4.4s\n\t"                                                               //
                     "fmaxnm v3.4s, v3.4s, v4.4s\n\t"                                                               //
                     "fmul v0.4s, v0.4s, %[scale].4s\n\t"                                                           //
                     "fmul v1.4s, v1.4s, %[scale].4s\n\t"                                                           //
                     "fmul v2.4s, v2.4s, %[scale].4s\n\t"                                                           //
                     "fmul v3.4s, v3.4s, %[scale].4s\n\t"                                                           //
                     "fcvtns v0.4s, v0.4s\n\t"                                                                      //
                     "fcvtns v1.4s, v1.4s\n\t"                                                                      //
                     "fcvtns v2.4s, v2.4s\n\t"                                                                      //
                     "fcvtns v3.4s, v3.4s\n\t"                                                                      //
                     "sqxtn v0.4h, v0.4s\n\t"                                                                       //
                     "sqxtn2 v0.8h, v1.4s\n\t"                                                                      //
                     "sqxtn v2.4h, v2.4s\n\t"                                                                       //
                     "sqxtn2 v2.8h, v3.4s\n\t"                                                                      //
                     "sqadd v0.8h, v0.8h, %[zp].8h\n\t"                                                             //
                     "sqadd v2.8h, v2.8h, %[zp].8h\n\t"                                                             //
                     "sqxtun v0.8b, v0.8h\n\t"                                                                      //
                     "sqxtun2 v0.16b, v2.8h\n\t"                                                                    //
                     "str q0, [%[q]], #16\n\t"
                     : [o] "+r"(*o), [a0] "+r"(*a0), [b0] "+r"(*b0), [a1] "+r"(*a1), [b1] "+r"(*b1), [a2] "+r"(*a2),
                       [b2] "+r"(*b2), [bias] "+r"(*bias), [q] "+r"(*q)
                     : [w0] "w"(w0), [w1] "w"(w1), [scale] "w"(scale), [zp] "w"(zp)
                     : "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20", "v21",
                       "v22", "v23");
}
#undef CK_DECODER_MAP3

/// One output pixel's channels; map_count is a constant where the caller passes one (3: the
/// four-stage encoders), so the loop over maps unrolls.
static inline __attribute__((always_inline)) void pixel(const float *o, size_t map_count, const float *const *a,
                                                        const float *const *b, const float *w0s, const float *w1s,
                                                        size_t channels, const float *bias, float inv_scale,
                                                        int32_t zero_point, uint8_t *q) {
    float32x4_t w0[CK_DECODER_MAPS_MAX], w1[CK_DECODER_MAPS_MAX];
    for (size_t i = 0; i < map_count; i++) w0[i] = vdupq_n_f32(w0s[i]), w1[i] = vdupq_n_f32(w1s[i]);
    const ck_u8_grid_neon grid = ck_u8_grid_neon_make(inv_scale, zero_point);
    size_t k = 0;
    if (map_count == 3) {
        const float32x4_t w0l = {w0s[0], w0s[1], w0s[2], 0.0f}, w1l = {w1s[0], w1s[1], w1s[2], 0.0f};
        const float *po = o, *a0 = a[0], *b0 = b[0], *a1 = a[1], *b1 = b[1], *a2 = a[2], *b2 = b[2], *pbias = bias;
        uint8_t *pq = q;
        for (; k + 16 <= channels; k += 16) pixel3_step16(&po, &a0, &b0, &a1, &b1, &a2, &b2, &pbias, &pq, w0l, w1l, grid.inv, grid.zp);
    }
    for (; k + 16 <= channels; k += 16) {
        vst1q_u8(q + k, ck_quantize_u8x16_neon(pixel4(o, map_count, a, b, w0, w1, bias, k),
                                               pixel4(o, map_count, a, b, w0, w1, bias, k + 4),
                                               pixel4(o, map_count, a, b, w0, w1, bias, k + 8),
                                               pixel4(o, map_count, a, b, w0, w1, bias, k + 12), grid));
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
    if (!ck_u8_zero_point_neon(zero_point)) { // no u8 grid's (ck_quantize_u8x16_neon)
        ck_decoder_sum_quantize_u8_portable(band, map_count, maps, heights, widths, channels, out_height, out_width, first_row,
                                            row_count, bias, inv_scale, zero_point, out, ldo, scratch);
        return;
    }
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
            const float *p0 = r0, *p1 = r1;
            float *pn = next;
            for (; k + 16 <= n; k += 16) blend16(&p0, &p1, &pn, v0, vy);
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
