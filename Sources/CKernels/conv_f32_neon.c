// AArch64 NEON direct fp32 convolution (see ckernels_conv.h), for the patch embeddings that
// stay in fp32: a tile of 4 output pixels of one row × 16 output channels (half a packed panel)
// in 16 q accumulators; per tap two ldp of packed weights, 4 scalar loads of input values and
// 16 fmla by element. Why 4×16: the 16 accumulators, 4 weight and 4 input registers fit the 32
// without spills, and a wider tile (5 or 6 pixels) saves under 5 % of the instructions per
// multiply-accumulate while spilling at 6.
//
// Bit for bit the portable version: each output value is the same chain of fused
// multiply-adds, fmaf(w, x, acc) from +0, over the taps in the same order ((ky, kx, c) for
// channels-last input, (ky, c, kx) otherwise), taps in the padding skipped (not added as
// zero), then + bias. Tiles whose taps all fall inside the row take the 4-pixel path; a tile
// at the row's ends (or past its last multiple of 4) goes pixel by pixel with the checks.
#include "ckernels_conv.h"
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include <arm_neon.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

enum { R = 4, HALF = 16 };

/// o[0..n) = acc + bias (bias may be NULL: + 0.0f, as the portable version adds).
static inline void store16(float *o, const float32x4_t acc[4], const float *bias, size_t n) {
    if (n >= HALF) {
        for (int i = 0; i < 4; i++) vst1q_f32(o + 4 * i, vaddq_f32(acc[i], bias ? vld1q_f32(bias + 4 * i) : vdupq_n_f32(0.0f)));
        return;
    }
    float t[HALF];
    for (int i = 0; i < 4; i++) vst1q_f32(t + 4 * i, acc[i]);
    for (size_t j = 0; j < n; j++) o[j] = t[j] + (bias ? bias[j] : 0.0f);
}

// The two fast paths below keep the 16 accumulators in named variables, out of line: as an array
// inlined into the caller's loops, clang copied all 16 with a mov each per step of their loop.
#define CK_ACC_LOAD                                                                                                    \
    float32x4_t a00 = acc[0][0], a01 = acc[0][1], a02 = acc[0][2], a03 = acc[0][3], a10 = acc[1][0], a11 = acc[1][1],   \
                a12 = acc[1][2], a13 = acc[1][3], a20 = acc[2][0], a21 = acc[2][1], a22 = acc[2][2], a23 = acc[2][3],   \
                a30 = acc[3][0], a31 = acc[3][1], a32 = acc[3][2], a33 = acc[3][3]
#define CK_ACC_STORE                                                                                                   \
    acc[0][0] = a00, acc[0][1] = a01, acc[0][2] = a02, acc[0][3] = a03, acc[1][0] = a10, acc[1][1] = a11;              \
    acc[1][2] = a12, acc[1][3] = a13, acc[2][0] = a20, acc[2][1] = a21, acc[2][2] = a22, acc[2][3] = a23;              \
    acc[3][0] = a30, acc[3][1] = a31, acc[3][2] = a32, acc[3][3] = a33
/// One tap for the 4 pixels, pixel r's input being lane `lane` of x##r; its weights are the 16 floats at wp, which
/// then advances by `step` bytes: one ld1 post-indexed by a register (in assembly, into 4 registers that must be
/// consecutive: clang made each tap's weights two ldp, and an add per tap for the address).
#define CK_TAP(wp, step, x0, x1, x2, x3, lane) CK_TAP_IN(wp, step, x0, x1, x2, x3, lane, "v24", "v25", "v26", "v27")
/// CK_TAP with the weights in v28–v31: taps alternate between the two sets, so that the next tap's load need not
/// wait for (or clang copy away) the last weights of this one.
#define CK_TAP2(wp, step, x0, x1, x2, x3, lane) CK_TAP_IN(wp, step, x0, x1, x2, x3, lane, "v28", "v29", "v30", "v31")
#define CK_TAP_IN(wp, step, x0, x1, x2, x3, lane, R0, R1, R2, R3)                                                      \
    {                                                                                                                  \
        register float32x4_t w0 __asm__(R0), w1 __asm__(R1), w2 __asm__(R2), w3 __asm__(R3);                           \
        __asm__("ld1 {" R0 ".4s, " R1 ".4s, " R2 ".4s, " R3 ".4s}, [%[p]], %[s]"                                       \
                : "=w"(w0), "=w"(w1), "=w"(w2), "=w"(w3), [p] "+r"(wp)                                                 \
                : [s] "r"(step), "m"(*(const float(*)[16])(wp)));                                                      \
        a00 = vfmaq_laneq_f32(a00, w0, x0, lane), a01 = vfmaq_laneq_f32(a01, w1, x0, lane);                            \
        a02 = vfmaq_laneq_f32(a02, w2, x0, lane), a03 = vfmaq_laneq_f32(a03, w3, x0, lane);                            \
        a10 = vfmaq_laneq_f32(a10, w0, x1, lane), a11 = vfmaq_laneq_f32(a11, w1, x1, lane);                            \
        a12 = vfmaq_laneq_f32(a12, w2, x1, lane), a13 = vfmaq_laneq_f32(a13, w3, x1, lane);                            \
        a20 = vfmaq_laneq_f32(a20, w0, x2, lane), a21 = vfmaq_laneq_f32(a21, w1, x2, lane);                            \
        a22 = vfmaq_laneq_f32(a22, w2, x2, lane), a23 = vfmaq_laneq_f32(a23, w3, x2, lane);                            \
        a30 = vfmaq_laneq_f32(a30, w0, x3, lane), a31 = vfmaq_laneq_f32(a31, w1, x3, lane);                            \
        a32 = vfmaq_laneq_f32(a32, w2, x3, lane), a33 = vfmaq_laneq_f32(a33, w3, x3, lane);                            \
    }

/// acc[r] += the `run` taps (a multiple of 4) of pixel r, consecutive floats at x + r·pstep, with their packed
/// weights (16 floats per tap): per 4 taps one 16-byte load per pixel and fmla by lane, in tap order.
static __attribute__((noinline)) void run_by_4(float32x4_t acc[R][4], const float *x, size_t pstep, const float *w,
                                               size_t run) {
    CK_ACC_LOAD;
    const size_t step = CK_CONV_NR * sizeof(float);
    for (size_t t = 0; t < run; t += 4, x += 4) {
        const float32x4_t x0 = vld1q_f32(x), x1 = vld1q_f32(x + pstep), x2 = vld1q_f32(x + 2 * pstep),
                          x3 = vld1q_f32(x + 3 * pstep);
        CK_TAP(w, step, x0, x1, x2, x3, 0)
        CK_TAP2(w, step, x0, x1, x2, x3, 1)
        CK_TAP(w, step, x0, x1, x2, x3, 2)
        CK_TAP2(w, step, x0, x1, x2, x3, 3)
    }
    CK_ACC_STORE;
}

/// acc[r] += the 7 taps along x of each of `channels` channels (channel_stride apart, weights CK_CONV_NR apart)
/// of pixel r, for a 7-wide kernel at stride 4 on channels-first input (x: pixel 0's first tap; pixel r's taps
/// are x[4r .. 4r+6]; tap t's weights at w + t·wstep): the five 16-byte loads x[0..20) hold all four pixels'
/// taps (pixel r's tap t is lane t % 4 of load r + t / 4), in (channel, tap) order per pixel.
static __attribute__((noinline)) void seven_stride4(float32x4_t acc[R][4], const float *x, size_t channels,
                                                    size_t channel_stride, const float *w, size_t wstep) {
    CK_ACC_LOAD;
    const size_t step = wstep * sizeof(float);
    for (size_t c = 0; c < channels; c++, x += channel_stride) {
        const float32x4_t v0 = vld1q_f32(x), v1 = vld1q_f32(x + 4), v2 = vld1q_f32(x + 8), v3 = vld1q_f32(x + 12),
                          v4 = vld1q_f32(x + 16);
        const float *wt = w; // tap t's weights at w + t·wstep
        CK_TAP(wt, step, v0, v1, v2, v3, 0)
        CK_TAP2(wt, step, v0, v1, v2, v3, 1)
        CK_TAP(wt, step, v0, v1, v2, v3, 2)
        CK_TAP2(wt, step, v0, v1, v2, v3, 3)
        CK_TAP(wt, step, v1, v2, v3, v4, 0)
        CK_TAP2(wt, step, v1, v2, v3, v4, 1)
        CK_TAP(wt, step, v1, v2, v3, v4, 2)
        w += CK_CONV_NR;
    }
    CK_ACC_STORE;
}
#undef CK_TAP
#undef CK_TAP2
#undef CK_TAP_IN
#undef CK_ACC_LOAD
#undef CK_ACC_STORE

void ck_conv2d_f32_neon(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                        size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                        size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                        size_t out_height, size_t out_width, size_t first_row, size_t row_count) {
    (void)out_height;
    const size_t panels = (out_channels + CK_CONV_NR - 1) / CK_CONV_NR, panel_size = kernel * kernel * channels * CK_CONV_NR;
    const int channels_last = channel_stride == 1 && pixel_stride == channels;
    // A run of taps: channels-last, a whole kernel row (kernel·channels consecutive floats, the
    // weights consecutive too); otherwise `kernel` taps of one channel along x.
    const size_t runs = channels_last ? 1 : channels, run = channels_last ? kernel * channels : kernel;
    const size_t xstep = channels_last ? 1 : pixel_stride, wstep = channels_last ? CK_CONV_NR : channels * CK_CONV_NR;
    // Channels first, 7 wide at stride 4 on contiguous rows (the first patch embedding): seven_stride4 where
    // its five loads stay inside the row (checked per tile).
    const int seven_by_4 = !channels_last && kernel == 7 && stride == 4 && pixel_stride == 1;
    // Pixels x_first ..< x_end have all their taps inside the row. They go in tiles of 4, the last one
    // overlapping the one before where their count is not a multiple of 4 (its pixels get the same values
    // again); the others one by one, with the checks.
    const size_t x_first = (padding + stride - 1) / stride;
    size_t x_end = width + padding >= kernel ? (width + padding - kernel) / stride + 1 : 0;
    if (x_end > out_width) x_end = out_width;
    const int tiles = x_end >= x_first + R;
    for (size_t oy = first_row; oy < first_row + row_count; oy++) {
        for (size_t ox0 = 0, count = 1; ox0 < out_width; ox0 += count) {
            int whole = 0;
            count = 1;
            if (tiles && ox0 >= x_first && ox0 < x_end) {
                if (ox0 + R > x_end) ox0 = x_end - R;
                whole = 1;
                count = R;
            }
            for (size_t p = 0; p < panels; p++) {
                for (size_t h = 0; h < CK_CONV_NR / HALF; h++) {
                    const size_t j0 = p * CK_CONV_NR + h * HALF;
                    if (j0 >= out_channels) break;
                    const size_t n = out_channels - j0;
                    const float *wp = packed + p * panel_size + h * HALF;
                    const float *bp = bias ? bias + j0 : NULL;
                    if (whole) {
                        float32x4_t acc[R][4];
                        for (int r = 0; r < R; r++)
                            for (int i = 0; i < 4; i++) acc[r][i] = vdupq_n_f32(0.0f);
                        for (size_t ky = 0; ky < kernel; ky++) {
                            const ptrdiff_t iy = (ptrdiff_t)(oy * stride + ky) - (ptrdiff_t)padding;
                            if (iy < 0 || iy >= (ptrdiff_t)height) continue;
                            const float *row = in + (size_t)iy * row_stride + (ox0 * stride - padding) * pixel_stride;
                            const float *wk = wp + ky * kernel * channels * CK_CONV_NR;
                            const size_t pstep = stride * pixel_stride;
                            if (channels_last && run % 4 == 0) {
                                run_by_4(acc, row, pstep, wk, run);
                                continue;
                            }
                            if (seven_by_4 && ox0 * stride + 5 * 4 - padding <= width) {
                                seven_stride4(acc, row, channels, channel_stride, wk, wstep);
                                continue;
                            }
                            for (size_t u = 0; u < runs; u++) {
                                const float *x = row + u * channel_stride, *w = wk + u * CK_CONV_NR;
                                for (size_t t = 0; t < run; t++, x += xstep, w += wstep) {
                                    const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4), w2 = vld1q_f32(w + 8),
                                                      w3 = vld1q_f32(w + 12);
                                    for (int r = 0; r < R; r++) {
                                        const float xv = x[r * pstep];
                                        acc[r][0] = vfmaq_n_f32(acc[r][0], w0, xv); // fmaf(w, x, acc) per lane
                                        acc[r][1] = vfmaq_n_f32(acc[r][1], w1, xv);
                                        acc[r][2] = vfmaq_n_f32(acc[r][2], w2, xv);
                                        acc[r][3] = vfmaq_n_f32(acc[r][3], w3, xv);
                                    }
                                }
                            }
                        }
                        for (int r = 0; r < R; r++)
                            store16(out + (oy * out_width + ox0 + r) * out_channels + j0, acc[r], bp, n);
                        continue;
                    }
                    for (size_t ox = ox0; ox < ox0 + count; ox++) {
                        float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
                        for (size_t ky = 0; ky < kernel; ky++) {
                            const ptrdiff_t iy = (ptrdiff_t)(oy * stride + ky) - (ptrdiff_t)padding;
                            if (iy < 0 || iy >= (ptrdiff_t)height) continue;
                            const size_t outer = channels_last ? kernel : channels, inner = channels_last ? channels : kernel;
                            for (size_t u = 0; u < outer; u++) {
                                for (size_t v = 0; v < inner; v++) {
                                    const size_t kx = channels_last ? u : v, c = channels_last ? v : u;
                                    const ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)padding;
                                    if (ix < 0 || ix >= (ptrdiff_t)width) continue;
                                    const float xv = in[(size_t)iy * row_stride + (size_t)ix * pixel_stride + c * channel_stride];
                                    const float *w = wp + ((ky * kernel + kx) * channels + c) * CK_CONV_NR;
                                    acc[0] = vfmaq_n_f32(acc[0], vld1q_f32(w), xv);
                                    acc[1] = vfmaq_n_f32(acc[1], vld1q_f32(w + 4), xv);
                                    acc[2] = vfmaq_n_f32(acc[2], vld1q_f32(w + 8), xv);
                                    acc[3] = vfmaq_n_f32(acc[3], vld1q_f32(w + 12), xv);
                                }
                            }
                        }
                        store16(out + (oy * out_width + ox) * out_channels + j0, acc, bp, n);
                    }
                }
            }
        }
    }
}
#endif
