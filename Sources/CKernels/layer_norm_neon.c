// AArch64 NEON versions of LayerNorm, into floats and into quantized bytes (see ck_layer_norm_f32
// and ck_layer_norm_quantize_u8); chosen by ops_dispatch.c.
//
// Bit for bit the portable versions as clang builds them for AArch64. Their sums run in double
// and may be reordered (`#pragma clang fp reassociate`); clang makes each of the two sums four
// accumulators of two doubles over blocks of 8 floats (x₀x₁, x₂x₃, x₄x₅, x₆x₇, the first starting
// from (+0, −0), the others from −0), joins them as (x₀x₁ + x₄x₅) + (x₂x₃ + x₆x₇), adds the two
// lanes, then adds the last channels % 8 one by one (rows of fewer than 8 channels: all one by one,
// from +0). The code below takes that order, so the mean and the inverse deviation come out the
// same to the last bit; the per-channel step is (x − mean)·inv, then one fused multiply-add with
// γ and β (clang contracts `…·γ + β`), then ck_quantize_u8. What changes is the work around it:
// no aliasing checks per row, and the quantization in 5 instructions per 4 values instead of 10
// (ck_quantize_u8x16_neon; zero points outside 0–255, no u8 grid's, go to the portable version).
// Should a future clang order the portable sums differently, the double sums could differ in
// their last bit, which reaches the float mean or inverse only at a float rounding boundary;
// ops_check --check under qemu would say so.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"

#include <math.h>

/// The 8 floats at x added into the four accumulators, as the portable loop's step does.
static inline void add8(float64x2_t acc[4], const float *x) {
    const float32x4_t lo = vld1q_f32(x), hi = vld1q_f32(x + 4);
    acc[0] = vaddq_f64(acc[0], vcvt_f64_f32(vget_low_f32(lo)));
    acc[1] = vaddq_f64(acc[1], vcvt_high_f64_f32(lo));
    acc[2] = vaddq_f64(acc[2], vcvt_f64_f32(vget_low_f32(hi)));
    acc[3] = vaddq_f64(acc[3], vcvt_high_f64_f32(hi));
}

/// (x − m)² of the 8 floats at x added into the four accumulators by fused multiply-adds.
static inline void add8_squares(float64x2_t acc[4], const float *x, float64x2_t m) {
    const float32x4_t lo = vld1q_f32(x), hi = vld1q_f32(x + 4);
    const float64x2_t d0 = vsubq_f64(vcvt_f64_f32(vget_low_f32(lo)), m), d1 = vsubq_f64(vcvt_high_f64_f32(lo), m);
    const float64x2_t d2 = vsubq_f64(vcvt_f64_f32(vget_low_f32(hi)), m), d3 = vsubq_f64(vcvt_high_f64_f32(hi), m);
    acc[0] = vfmaq_f64(acc[0], d0, d0);
    acc[1] = vfmaq_f64(acc[1], d1, d1);
    acc[2] = vfmaq_f64(acc[2], d2, d2);
    acc[3] = vfmaq_f64(acc[3], d3, d3);
}

/// The accumulators' start, (+0, −0) and −0, and their join, (x₀x₁ + x₄x₅) + (x₂x₃ + x₆x₇), lane 0 + lane 1.
static inline void start(float64x2_t acc[4]) {
    acc[1] = acc[2] = acc[3] = vdupq_n_f64(-0.0);
    acc[0] = vsetq_lane_f64(0.0, acc[1], 0);
}
static inline double join(const float64x2_t acc[4]) {
    const float64x2_t t = vaddq_f64(vaddq_f64(acc[0], acc[2]), vaddq_f64(acc[1], acc[3]));
    return vgetq_lane_f64(t, 0) + vgetq_lane_f64(t, 1);
}

/// Σ x[c] in the portable version's order (see above); blocks of 8 two at a time (the same
/// additions in the same order, half the loop's own instructions).
static inline double row_sum(const float *x, size_t channels) {
    size_t c = 0;
    double sum = 0;
    if (channels >= 8) {
        float64x2_t acc[4];
        start(acc);
        for (; c + 16 <= channels; c += 16) add8(acc, x + c), add8(acc, x + c + 8);
        if (c + 8 <= channels) add8(acc, x + c), c += 8;
        sum = join(acc);
    }
#pragma clang loop vectorize(disable)
    for (; c < channels; c++) sum += x[c];
    return sum;
}

/// Σ (x[c] − mean)² in the portable version's order, each square added by a fused multiply-add.
static inline double row_squares(const float *x, size_t channels, double mean) {
    size_t c = 0;
    double sq = 0;
    if (channels >= 8) {
        const float64x2_t m = vdupq_n_f64(mean);
        float64x2_t acc[4];
        start(acc);
        for (; c + 16 <= channels; c += 16) add8_squares(acc, x + c, m), add8_squares(acc, x + c + 8, m);
        if (c + 8 <= channels) add8_squares(acc, x + c, m), c += 8;
        sq = join(acc);
    }
#pragma clang loop vectorize(disable)
    for (; c < channels; c++) {
        const double d = x[c] - mean;
        sq += d * d; // contracted to a fused multiply-add, as in the portable loop
    }
    return sq;
}

/// The row's float mean and 1/√(variance + eps), as the portable version rounds them.
static inline void row_stats(const float *x, size_t channels, float eps, float *mean, float *inv) {
    const double m = row_sum(x, channels) / (double)channels;
    const double sq = row_squares(x, channels, m);
    *inv = (float)(1.0 / sqrt(sq / (double)channels + eps));
    *mean = (float)m;
}

/// row_stats for a row of 32 channels (every MiT encoder's first stage, where most rows are), its 32 floats in xv:
/// loaded once and converted to doubles once, kept in registers from the sum to the squares (the general loops
/// load and convert them twice and run each loop twice per row): the same additions in the same order, 4 blocks of
/// 8 into the 4 accumulators.
static inline void row_stats32(const float32x4_t xv[8], float eps, float *mean, float *inv) {
    float64x2_t d[16];
    for (int i = 0; i < 8; i++) d[2 * i] = vcvt_f64_f32(vget_low_f32(xv[i])), d[2 * i + 1] = vcvt_high_f64_f32(xv[i]);
    float64x2_t acc[4];
    start(acc);
    for (int b = 0; b < 4; b++)
        for (int j = 0; j < 4; j++) acc[j] = vaddq_f64(acc[j], d[4 * b + j]);
    const double m = join(acc) / 32.0;
    const float64x2_t mv = vdupq_n_f64(m);
    start(acc);
    for (int b = 0; b < 4; b++)
        for (int j = 0; j < 4; j++) {
            const float64x2_t t = vsubq_f64(d[4 * b + j], mv);
            acc[j] = vfmaq_f64(acc[j], t, t);
        }
    *inv = (float)(1.0 / sqrt(join(acc) / 32.0 + eps));
    *mean = (float)m;
}

/// The 32 floats at x as 8 registers (two ld1).
static inline void load32(const float *x, float32x4_t xv[8]) {
    const float32x4x4_t a = vld1q_f32_x4(x), b = vld1q_f32_x4(x + 16);
    for (int i = 0; i < 4; i++) xv[i] = a.val[i], xv[4 + i] = b.val[i];
}

/// (x − mean)·inv·γ + β on 4 channels already loaded: the product, then one fused multiply-add.
static inline float32x4_t normalize4v(float32x4_t x, const float *gamma, const float *beta, float32x4_t m, float32x4_t inv) {
    return vfmaq_f32(vld1q_f32(beta), vmulq_f32(vsubq_f32(x, m), inv), vld1q_f32(gamma));
}

/// normalize4v of the 4 channels at x.
static inline float32x4_t normalize4(const float *x, const float *gamma, const float *beta, float32x4_t m, float32x4_t inv) {
    return normalize4v(vld1q_f32(x), gamma, beta, m, inv);
}

void ck_layer_norm_quantize_u8_neon(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                    const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point) {
    if (!ck_u8_zero_point_neon(zero_point)) {
        ck_layer_norm_quantize_u8_portable(in, out, ldo, rows, channels, gamma, beta, eps, inv_scale, zero_point);
        return;
    }
    const ck_u8_grid_neon grid = ck_u8_grid_neon_make(inv_scale, zero_point);
    if (channels == 32) {
        for (size_t r = 0; r < rows; r++) {
            float32x4_t xv[8];
            load32(in + r * channels, xv);
            float mean, inv;
            row_stats32(xv, eps, &mean, &inv);
            const float32x4_t m = vdupq_n_f32(mean), s = vdupq_n_f32(inv);
            for (size_t h = 0; h < 2; h++) {
                float32x4_t y[4];
                for (int i = 0; i < 4; i++) y[i] = normalize4v(xv[4 * h + i], gamma + 16 * h + 4 * i, beta + 16 * h + 4 * i, m, s);
                vst1q_u8(out + r * ldo + 16 * h, ck_quantize_u8x16_neon(y[0], y[1], y[2], y[3], grid));
            }
        }
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        uint8_t *q = out + r * ldo;
        float mean, inv;
        row_stats(x, channels, eps, &mean, &inv);
        const float32x4_t m = vdupq_n_f32(mean), s = vdupq_n_f32(inv);
        size_t c = 0;
        for (; c + 16 <= channels; c += 16) {
            vst1q_u8(q + c, ck_quantize_u8x16_neon(normalize4(x + c, gamma + c, beta + c, m, s),
                                                   normalize4(x + c + 4, gamma + c + 4, beta + c + 4, m, s),
                                                   normalize4(x + c + 8, gamma + c + 8, beta + c + 8, m, s),
                                                   normalize4(x + c + 12, gamma + c + 12, beta + c + 12, m, s), grid));
        }
#pragma clang loop vectorize(disable) // the last few: a vectorised tail costs more per row than it saves
        for (; c < channels; c++) q[c] = ck_quantize_u8((x[c] - mean) * inv * gamma[c] + beta[c], inv_scale, zero_point);
    }
}

void ck_layer_norm_f32_neon(const float *in, float *out, size_t rows, size_t channels, const float *gamma, const float *beta,
                            float eps) {
    if (channels == 32) {
        for (size_t r = 0; r < rows; r++) {
            float32x4_t xv[8];
            load32(in + r * channels, xv); // out may be in: the row is read before it is written
            float mean, inv;
            row_stats32(xv, eps, &mean, &inv);
            const float32x4_t m = vdupq_n_f32(mean), s = vdupq_n_f32(inv);
            for (int i = 0; i < 8; i++) vst1q_f32(out + r * channels + 4 * i, normalize4v(xv[i], gamma + 4 * i, beta + 4 * i, m, s));
        }
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        float *y = out + r * channels; // may be x: each value is read before it is written
        float mean, inv;
        row_stats(x, channels, eps, &mean, &inv);
        const float32x4_t m = vdupq_n_f32(mean), s = vdupq_n_f32(inv);
        size_t c = 0;
        for (; c + 8 <= channels; c += 8) {
            const float32x4_t a = normalize4(x + c, gamma + c, beta + c, m, s);
            const float32x4_t b = normalize4(x + c + 4, gamma + c + 4, beta + c + 4, m, s);
            vst1q_f32(y + c, a);
            vst1q_f32(y + c + 4, b);
        }
#pragma clang loop vectorize(disable)
        for (; c < channels; c++) y[c] = (x[c] - mean) * inv * gamma[c] + beta[c];
    }
}
#endif
