// AArch64 NEON version of MTLSegFormer's cross-task gates and the combine conv's input (see ck_gate_concat_u8 in
// ckernels_q8.h); chosen by ops_dispatch.c. Byte for byte the portable version (gate_concat_u8.c), whose float
// operations are each one rounding (it contracts nothing, unlike the other NEON kernels' portable twins): here too
// every product is a vmulq and every sum a vaddq, never a fused multiply-add.
//   - The dot products' 64 lanes are 16 q registers (lane l of acc[k] is lane 4k + l), one pixel at a time, filled
//     16 lanes at a time (each lane still takes its products in the portable order). The lanes are halved as the
//     portable sum_lanes.
//   - exp is ck_math.h's own, scalar, once per pixel and gate (built here with contraction off, as there).
//   - The bytes: quantize4 and the saturating narrows are ck_quantize_u8 (quantize4 says why).
// (The pragmas come first: they must cover ck_math.h's exp too.)
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"
#include "ckernels_q8.h"

_Static_assert(CK_GATE_DOT_LANES == 64, "16 q registers are the 64 lanes");

/// acc + x·w on 4 lanes, the last `rem` < 4 values read from zero-padded copies (the lanes past n add 0·0 = +0, as
/// in the portable version).
static inline float32x4_t add_partial(float32x4_t acc, const float *x, const float *w, size_t rem) {
    float xt[4] = {0}, wt[4] = {0};
    for (size_t l = 0; l < rem; l++) xt[l] = x[l], wt[l] = w[l];
    return vaddq_f32(acc, vmulq_f32(vld1q_f32(xt), vld1q_f32(wt)));
}

/// Adds x[i]·w[i] (i < n) into the 16 lanes 16q … 16q + 15 (acc[4q … 4q + 3]): the i ≡ 16q … 16q + 15 mod 64, in
/// increasing i. One group of lanes at a time, so that its 4 accumulators and loads stay in registers (all 16
/// accumulators and their loads did not fit: clang spilled them). Blocks of 4 wholly past n are skipped, which adds
/// the same nothing as the portable version's +0 (a lane that starts at +0 is never −0).
static inline void add_products(float32x4_t acc[16], size_t q, const float *x, const float *w, size_t n) {
    float32x4_t a0 = acc[4 * q], a1 = acc[4 * q + 1], a2 = acc[4 * q + 2], a3 = acc[4 * q + 3];
    size_t i = 16 * q;
    for (; i + 16 <= n; i += 64) {
        const float32x4x4_t xv = vld1q_f32_x4(x + i), wv = vld1q_f32_x4(w + i);
        a0 = vaddq_f32(a0, vmulq_f32(xv.val[0], wv.val[0]));
        a1 = vaddq_f32(a1, vmulq_f32(xv.val[1], wv.val[1]));
        a2 = vaddq_f32(a2, vmulq_f32(xv.val[2], wv.val[2]));
        a3 = vaddq_f32(a3, vmulq_f32(xv.val[3], wv.val[3]));
    }
    if (i < n) { // the last, partial group of 16: n − i < 16
        const size_t rem = n - i;
        if (rem >= 4) a0 = vaddq_f32(a0, vmulq_f32(vld1q_f32(x + i), vld1q_f32(w + i)));
        else a0 = add_partial(a0, x + i, w + i, rem);
        if (rem >= 8) a1 = vaddq_f32(a1, vmulq_f32(vld1q_f32(x + i + 4), vld1q_f32(w + i + 4)));
        else if (rem > 4) a1 = add_partial(a1, x + i + 4, w + i + 4, rem - 4);
        if (rem >= 12) a2 = vaddq_f32(a2, vmulq_f32(vld1q_f32(x + i + 8), vld1q_f32(w + i + 8)));
        else if (rem > 8) a2 = add_partial(a2, x + i + 8, w + i + 8, rem - 8);
        if (rem > 12) a3 = add_partial(a3, x + i + 12, w + i + 12, rem - 12);
    }
    acc[4 * q] = a0, acc[4 * q + 1] = a1, acc[4 * q + 2] = a2, acc[4 * q + 3] = a3;
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

/// ck_quantize_u8 on 4 values as int32 lanes, below 0 and past 255 left to the saturating narrows: max(x·inv, −zp)
/// rounded to nearest even, + zp. fmaxnm's bound is ck_quantize_u8's lower clamp moved before the rounding (the
/// same, as −zp is an integer), and it turns a NaN into −zp, so into byte 0 as there, in one instruction where
/// ck_quantize_s32_neon's mask takes two; above, fcvtns and the add saturate, and the narrows clamp to 255.
static inline int32x4_t quantize4(float32x4_t x, float32x4_t inv, float32x4_t lo, int32x4_t zp) {
    return vqaddq_s32(vcvtnq_s32_f32(vmaxnmq_f32(vmulq_f32(x, inv), lo)), zp);
}

/// 16 values quantized into 16 bytes.
static inline uint8x16_t quantize16(float32x4x4_t x, float32x4_t inv, float32x4_t lo, int32x4_t zp) {
    return ck_pack_u8x16_neon(quantize4(x.val[0], inv, lo, zp), quantize4(x.val[1], inv, lo, zp), quantize4(x.val[2], inv, lo, zp),
                              quantize4(x.val[3], inv, lo, zp));
}

/// Row `q` of the output: q(own) then q(Σ_g a_g·others_g), each `channels` bytes.
static inline void store_pixel(uint8_t *q, const float *f, const float *const *others, size_t row, size_t channels,
                               size_t gates, const float *a, float inv_scale, int32_t zero_point) {
    const float32x4_t inv = vdupq_n_f32(inv_scale), lo = vdupq_n_f32((float)-zero_point);
    const int32x4_t zp = vdupq_n_s32(zero_point);
    const float *o0 = others[0] + row;
    const float a0 = a[0];
    size_t c = 0;
    for (; c + 16 <= channels; c += 16) {
        vst1q_u8(q + c, quantize16(vld1q_f32_x4(f + c), inv, lo, zp));
        // The first product is not added to +0 (as in the portable version).
        float32x4x4_t cross = vld1q_f32_x4(o0 + c);
        for (int k = 0; k < 4; k++) cross.val[k] = vmulq_n_f32(cross.val[k], a0);
        for (size_t g = 1; g < gates; g++) {
            const float32x4x4_t o = vld1q_f32_x4(others[g] + row + c);
            for (int k = 0; k < 4; k++) cross.val[k] = vaddq_f32(cross.val[k], vmulq_n_f32(o.val[k], a[g]));
        }
        vst1q_u8(q + channels + c, quantize16(cross, inv, lo, zp));
    }
#pragma clang loop vectorize(disable) // the last few channels, as the portable version computes each
    for (; c < channels; c++) {
        q[c] = ck_quantize_u8(f[c], inv_scale, zero_point);
        float cross = a0 * o0[c];
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
            for (size_t q = 0; q < 4; q++) {
                add_products(acc, q, own + row, self_weights[g], channels);
                add_products(acc, q, others[g] + row, other_weights[g], channels);
            }
            a[g] = 1.0f / (1.0f + ck_expf(-(sum_lanes(acc) + bias[g])));
        }
        store_pixel(out + p * ldo, own + row, others, row, channels, gates, a, inv_scale, zero_point);
    }
}
#endif
