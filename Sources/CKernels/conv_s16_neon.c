// AArch64 NEON 16-bit direct convolution (see ckernels_conv_s16.h): a tile of 2 output pixels
// of one row × 16 output channels (half a packed panel). The packing puts each output's two
// taps of a pair side by side, and NEON has no 16-bit dot product, so the sums are kept per
// (output, tap of the pair): per pair of taps, two ldp of packed weights (16 outputs × 2 taps),
// per pixel one ld1r of its two input values (one 32-bit lane, repeated), and per pixel 8
// widening multiply-accumulates (smlal/smlal2, 4 products each) into 8 accumulators; the two
// taps' sums are added pairwise (addp) once, after the last tap. Integer sums are exact in any
// order, so this writes what the portable version writes. Why 2×16: 16 accumulators, 4 weight
// and 2 input registers; 3 pixels would take 31 of the 32 registers for 4 % fewer instructions.
// The bordered map is readable for whole tiles of 8 pixels (ck_conv2d_s16_map_width), so a
// last tile of 2 reads inside it and only stores its valid pixels.
#include "ckernels_conv_s16.h"
#include "ckernels_conv.h"
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include <arm_neon.h>
#include <string.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

enum { NR = CK_CONV_NR, HALF = 16, P = 2 };

/// The two int16 at p as one 32-bit lane, repeated: (x0, x1, x0, x1, …). Opaque to the compiler:
/// knowing both halves equal, clang turned each smlal2 into an ext of the weights and an smlal.
static inline int16x8_t pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    int16x8_t x = vreinterpretq_s16_s32(vdupq_n_s32(v));
    __asm__("" : "+w"(x));
    return x;
}

/// The 16 outputs' products with one pixel's pair of taps: a##0 holds outputs 0, 1 (each as its
/// two taps' lanes), a##1 outputs 2, 3, … a##7 outputs 14, 15.
#define CK_MAC(a, x)                                                                                                   \
    a##0 = vmlal_s16(a##0, vget_low_s16(w0), vget_low_s16(x)), a##1 = vmlal_high_s16(a##1, w0, x);                     \
    a##2 = vmlal_s16(a##2, vget_low_s16(w1), vget_low_s16(x)), a##3 = vmlal_high_s16(a##3, w1, x);                     \
    a##4 = vmlal_s16(a##4, vget_low_s16(w2), vget_low_s16(x)), a##5 = vmlal_high_s16(a##5, w2, x);                     \
    a##6 = vmlal_s16(a##6, vget_low_s16(w3), vget_low_s16(x)), a##7 = vmlal_high_s16(a##7, w3, x)

/// The sums of a tile of 2 pixels × 16 outputs, per output and tap of the pair (see CK_MAC). Out of
/// line with its accumulators in named registers: as arrays, inlined, clang stored them every pair.
static __attribute__((noinline)) void tile(int32x4_t acc[2][8], const int16_t *x, size_t step, const int16_t *w,
                                           size_t kernel, size_t pairs, size_t row) {
    int32x4_t a0 = vdupq_n_s32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
    int32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0, b4 = a0, b5 = a0, b6 = a0, b7 = a0;
    for (size_t ky = 0; ky < kernel; ky++, x += row) {
        const int16_t *xa = x, *xb = x + step;
#pragma clang loop unroll_count(2)
        for (size_t q = 0; q < pairs; q++, w += 2 * NR, xa += 2, xb += 2) {
            const int16x8_t w0 = vld1q_s16(w), w1 = vld1q_s16(w + 8), w2 = vld1q_s16(w + 16), w3 = vld1q_s16(w + 24);
            const int16x8_t x0 = pair(xa), x1 = pair(xb);
            CK_MAC(a, x0);
            CK_MAC(b, x1);
        }
    }
    acc[0][0] = a0, acc[0][1] = a1, acc[0][2] = a2, acc[0][3] = a3, acc[0][4] = a4, acc[0][5] = a5, acc[0][6] = a6, acc[0][7] = a7;
    acc[1][0] = b0, acc[1][1] = b1, acc[1][2] = b2, acc[1][3] = b3, acc[1][4] = b4, acc[1][5] = b5, acc[1][6] = b6, acc[1][7] = b7;
}
#undef CK_MAC

/// o[0..n) = (float)sum · scale + bias, two roundings as the portable version (bias may be NULL).
static inline void store16(float *o, const int32x4_t acc[8], const float *scales, const float *bias, size_t n) {
    float32x4_t v[4];
    for (int i = 0; i < 4; i++) {
        float32x4_t s = vdupq_n_f32(0.0f), b = vdupq_n_f32(0.0f);
        if (n >= HALF) {
            s = vld1q_f32(scales + 4 * i);
            if (bias) b = vld1q_f32(bias + 4 * i);
        } else {
            float st[4] = {0}, bt[4] = {0};
            for (size_t j = 0; j < 4; j++)
                if (4 * i + j < n) st[j] = scales[4 * i + j], bt[j] = bias ? bias[4 * i + j] : 0.0f;
            s = vld1q_f32(st);
            b = vld1q_f32(bt);
        }
        v[i] = vmulq_f32(vcvtq_f32_s32(vpaddq_s32(acc[2 * i], acc[2 * i + 1])), s);
        if (bias) v[i] = vaddq_f32(v[i], b);
    }
    if (n >= HALF) {
        for (int i = 0; i < 4; i++) vst1q_f32(o + 4 * i, v[i]);
        return;
    }
    float t[HALF];
    for (int i = 0; i < 4; i++) vst1q_f32(t + 4 * i, v[i]);
    for (size_t j = 0; j < n; j++) o[j] = t[j];
}

void ck_conv2d_s16_neon(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed, size_t out_channels,
                        size_t kernel, size_t stride, const float *scales, const float *bias, float *out, size_t out_width,
                        size_t first_row, size_t row_count) {
    const size_t cp = ck_conv2d_s16_channel_stride(channels), pairs = kernel * cp / 2, step = stride * cp;
    const size_t panels = (out_channels + NR - 1) / NR, panel_size = kernel * kernel * cp * NR;
    for (size_t p = 0; p < panels; p++)
        for (size_t h = 0; h < NR / HALF; h++) {
            const size_t j0 = p * NR + h * HALF;
            if (j0 >= out_channels) break;
            const size_t n = out_channels - j0;
            for (size_t oy = first_row; oy < first_row + row_count; oy++)
                for (size_t ox0 = 0; ox0 < out_width; ox0 += P) {
                    int32x4_t acc[2][8];
                    tile(acc, in + ((oy * stride) * map_width + ox0 * stride) * cp, step,
                         packed + p * panel_size + h * HALF * 2, kernel, pairs, map_width * cp);
                    float *o = out + (oy * out_width + ox0) * out_channels + j0;
                    store16(o, acc[0], scales + j0, bias ? bias + j0 : NULL, n);
                    if (ox0 + 1 < out_width) store16(o + out_channels, acc[1], scales + j0, bias ? bias + j0 : NULL, n);
                }
        }
}
#endif
