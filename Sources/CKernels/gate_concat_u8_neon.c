// AArch64 NEON version of MTLSegFormer's cross-task gates and the combine conv's input (see ck_gate_concat_u8 in
// ckernels_q8.h); chosen by ops_dispatch.c. Byte for byte the portable version (gate_concat_u8.c), whose float
// operations are each one rounding (it contracts nothing, unlike the other NEON kernels' portable twins): here too
// every product is a vmulq and every sum a vaddq, never a fused multiply-add.
//   - The dot products' 64 lanes are 16 q registers (lane l of acc[k] is lane 4k + l), one pixel at a time: two
//     pixels would need 32 accumulators, every register there is. The lanes are halved as the portable sum_lanes.
//   - exp is ck_math.h's own, scalar, once per pixel and gate (built here with contraction off, as there).
//   - The bytes: ck_quantize_s32_neon and the saturating narrows are ck_quantize_u8 (ck_math_neon.h says why).
// (The pragmas come first: they must cover ck_math.h's exp too.)
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"
#include "ckernels_q8.h"

#include <string.h>

_Static_assert(CK_GATE_DOT_LANES == 64, "16 q registers are the 64 lanes");

/// Adds x[i]·w[i] (i < n) into the lanes. A last partial block of 4 is read from zero-padded copies, so that
/// nothing past n is read and the lanes past n add 0·0 = +0, as the portable version's; whole blocks of 4 past n
/// are skipped, which adds the same nothing (a lane that starts at +0 is never −0).
static inline void add_products(float32x4_t acc[16], const float *x, const float *w, size_t n) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 16; k += 4) {
            const float32x4x4_t xv = vld1q_f32_x4(x + i + 4 * k), wv = vld1q_f32_x4(w + i + 4 * k);
            acc[k] = vaddq_f32(acc[k], vmulq_f32(xv.val[0], wv.val[0]));
            acc[k + 1] = vaddq_f32(acc[k + 1], vmulq_f32(xv.val[1], wv.val[1]));
            acc[k + 2] = vaddq_f32(acc[k + 2], vmulq_f32(xv.val[2], wv.val[2]));
            acc[k + 3] = vaddq_f32(acc[k + 3], vmulq_f32(xv.val[3], wv.val[3]));
        }
    int k = 0;
    for (; i + 4 <= n; i += 4, k++) acc[k] = vaddq_f32(acc[k], vmulq_f32(vld1q_f32(x + i), vld1q_f32(w + i)));
    if (i < n) {
        float xt[4] = {0}, wt[4] = {0};
        memcpy(xt, x + i, (n - i) * sizeof(float));
        memcpy(wt, w + i, (n - i) * sizeof(float));
        acc[k] = vaddq_f32(acc[k], vmulq_f32(vld1q_f32(xt), vld1q_f32(wt)));
    }
}

/// The 64 lanes summed by halves, as the portable sum_lanes: lane l + lane l + half, down to one.
static inline float sum_lanes(const float32x4_t acc[16]) {
    float32x4_t h[8];
    for (int k = 0; k < 8; k++) h[k] = vaddq_f32(acc[k], acc[k + 8]); // 64 → 32 lanes
    for (int k = 0; k < 4; k++) h[k] = vaddq_f32(h[k], h[k + 4]);     // 32 → 16
    for (int k = 0; k < 2; k++) h[k] = vaddq_f32(h[k], h[k + 2]);     // 16 → 8
    const float32x4_t l4 = vaddq_f32(h[0], h[1]);                     // 8 → 4
    const float32x2_t l2 = vadd_f32(vget_low_f32(l4), vget_high_f32(l4));
    return vpadds_f32(l2);
}

/// Row `q` of the output: q(own) then q(Σ_g a_g·others_g), each `channels` bytes.
static inline void store_pixel(uint8_t *q, const float *f, const float *const *others, size_t row, size_t channels,
                               size_t gates, const float *a, float inv_scale, int32_t zero_point) {
    const float32x4_t inv = vdupq_n_f32(inv_scale);
    const int32x4_t zp = vdupq_n_s32(zero_point);
    size_t c = 0;
    for (; c + 16 <= channels; c += 16) {
        const float32x4x4_t own = vld1q_f32_x4(f + c);
        vst1q_u8(q + c, ck_pack_u8x16_neon(ck_quantize_s32_neon(own.val[0], inv, zp), ck_quantize_s32_neon(own.val[1], inv, zp),
                                           ck_quantize_s32_neon(own.val[2], inv, zp), ck_quantize_s32_neon(own.val[3], inv, zp)));
        // The first product is not added to +0 (as in the portable version).
        float32x4x4_t cross = vld1q_f32_x4(others[0] + row + c);
        for (int k = 0; k < 4; k++) cross.val[k] = vmulq_n_f32(cross.val[k], a[0]);
        for (size_t g = 1; g < gates; g++) {
            const float32x4x4_t o = vld1q_f32_x4(others[g] + row + c);
            for (int k = 0; k < 4; k++) cross.val[k] = vaddq_f32(cross.val[k], vmulq_n_f32(o.val[k], a[g]));
        }
        vst1q_u8(q + channels + c,
                 ck_pack_u8x16_neon(ck_quantize_s32_neon(cross.val[0], inv, zp), ck_quantize_s32_neon(cross.val[1], inv, zp),
                                    ck_quantize_s32_neon(cross.val[2], inv, zp), ck_quantize_s32_neon(cross.val[3], inv, zp)));
    }
#pragma clang loop vectorize(disable) // the last few channels, as the portable version computes each
    for (; c < channels; c++) {
        q[c] = ck_quantize_u8(f[c], inv_scale, zero_point);
        float cross = a[0] * others[0][row + c];
        for (size_t g = 1; g < gates; g++) cross = cross + a[g] * others[g][row + c];
        q[channels + c] = ck_quantize_u8(cross, inv_scale, zero_point);
    }
}

void ck_gate_concat_u8_neon(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                            size_t gates, const float *const *self_weights, const float *const *other_weights,
                            const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                            float *scratch) {
    float *a = scratch; // one pixel's gate values
    for (size_t p = 0; p < pixels; p++) {
        const size_t row = p * ld;
        for (size_t g = 0; g < gates; g++) {
            float32x4_t acc[16];
            for (int k = 0; k < 16; k++) acc[k] = vdupq_n_f32(0.0f);
            add_products(acc, own + row, self_weights[g], channels);
            add_products(acc, others[g] + row, other_weights[g], channels);
            a[g] = 1.0f / (1.0f + ck_expf(-(sum_lanes(acc) + bias[g])));
        }
        store_pixel(out + p * ldo, own + row, others, row, channels, gates, a, inv_scale, zero_point);
    }
}
#endif
