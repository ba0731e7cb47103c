// AArch64 NEON version of MTLSegFormer's cross-task gates and the combine conv's input (see ck_gate_concat_u8 in
// ckernels_q8.h); chosen by ops_dispatch.c. Byte for byte the portable version (gate_concat_u8.c), whose float
// operations are each one rounding (it contracts nothing, unlike the other NEON kernels' portable twins): here too
// every product is a vmulq and every sum a vaddq, never a fused multiply-add.
//   - The dot products' 64 lanes are 16 q registers (lane l of acc[k] is lane 4k + l), two pixels at a time (they
//     share the weights), filled 16 lanes at a time, both dot products (each lane still takes its products in the
//     portable order). The lanes are halved as the portable sum_lanes.
//   - exp is ck_math.h's own, step for step on vectors (sigmoid4), both pixels' at once.
//   - The bytes: ck_quantize_u8x16_neon (ck_math_neon.h); zero points outside 0–255 (no u8 grid's) go to the
//     portable version.
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

/// The 16 lanes 16q … 16q + 15 of two pixels' sums (x and y).
typedef struct {
    float32x4_t x[4], y[4];
} lane_group2;

/// Adds x[i]·w[i] and y[i]·w[i] (i < n: two pixels, the same weights) into the lane group of q: the i ≡ 16q … 16q + 15
/// mod 64, in increasing i. Blocks of 4 wholly past n are skipped, which adds the same nothing as the portable
/// version's +0 (a lane that starts at +0 is never −0).
static inline __attribute__((always_inline)) lane_group2 add_products2(lane_group2 a, size_t q, const float *x, const float *y,
                                                                        const float *w, size_t n) {
    size_t i = 16 * q;
    if (i + 16 <= n) { // the whole groups of 16: one pass each, i = 16q, 16q + 64, …
        const size_t passes = (n - 16 - i) / 64 + 1, step = 64 * sizeof(float);
        const float *wp = w + i, *xp = x + i, *yp = y + i;
        size_t left = passes;
        // In assembly: clang's loop addressed the three rows by i (an add each per pass) and counted i against n;
        // here each row's 16 floats are one ld1 post-indexed by the 256-byte step, and the passes count down.
        __asm__("1:\n\t"
                "ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [%[w]], %[step]\n\t"
                "ld1 {v4.4s, v5.4s, v6.4s, v7.4s}, [%[x]], %[step]\n\t"
                "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[y]], %[step]\n\t"
                "fmul v4.4s, v4.4s, v0.4s\n\t"
                "fmul v5.4s, v5.4s, v1.4s\n\t"
                "fmul v6.4s, v6.4s, v2.4s\n\t"
                "fmul v7.4s, v7.4s, v3.4s\n\t"
                "fmul v16.4s, v16.4s, v0.4s\n\t"
                "fmul v17.4s, v17.4s, v1.4s\n\t"
                "fmul v18.4s, v18.4s, v2.4s\n\t"
                "fmul v19.4s, v19.4s, v3.4s\n\t"
                "fadd %[x0].4s, %[x0].4s, v4.4s\n\t"
                "fadd %[x1].4s, %[x1].4s, v5.4s\n\t"
                "fadd %[x2].4s, %[x2].4s, v6.4s\n\t"
                "fadd %[x3].4s, %[x3].4s, v7.4s\n\t"
                "fadd %[y0].4s, %[y0].4s, v16.4s\n\t"
                "fadd %[y1].4s, %[y1].4s, v17.4s\n\t"
                "fadd %[y2].4s, %[y2].4s, v18.4s\n\t"
                "fadd %[y3].4s, %[y3].4s, v19.4s\n\t"
                "subs %[left], %[left], #1\n\t"
                "b.ne 1b"
                : [x0] "+w"(a.x[0]), [x1] "+w"(a.x[1]), [x2] "+w"(a.x[2]), [x3] "+w"(a.x[3]), [y0] "+w"(a.y[0]),
                  [y1] "+w"(a.y[1]), [y2] "+w"(a.y[2]), [y3] "+w"(a.y[3]), [w] "+r"(wp), [x] "+r"(xp), [y] "+r"(yp),
                  [left] "+r"(left)
                : [step] "r"(step)
                : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19");
        i += 64 * passes;
    }
    if (i < n) // the last, partial group of 16: n − i < 16
        for (size_t k = 0; k < 4 && 4 * k < n - i; k++) {
            const size_t r = n - i - 4 * k, at = i + 4 * k;
            if (r >= 4) {
                const float32x4_t wk = vld1q_f32(w + at);
                a.x[k] = vaddq_f32(a.x[k], vmulq_f32(vld1q_f32(x + at), wk));
                a.y[k] = vaddq_f32(a.y[k], vmulq_f32(vld1q_f32(y + at), wk));
            } else {
                a.x[k] = add_partial(a.x[k], x + at, w + at, r);
                a.y[k] = add_partial(a.y[k], y + at, w + at, r);
            }
        }
    return a;
}

/// Gate g's two dot products of pixels x and y (rows rx, ry) into their 64 lanes sx and sy: one group of 16 lanes
/// at a time, self products then the other map's, so that the group's accumulators and loads stay in registers
/// (all 16 accumulators of even one pixel and their loads did not fit: clang spilled them); the two pixels share
/// the weights' loads and the loops.
static inline void dot_products2(float32x4_t sx[16], float32x4_t sy[16], const float *own, const float *other, size_t rx, size_t ry,
                                 const float *self_weights, const float *other_weights, size_t channels) {
    for (size_t q = 0; q < 4; q++) {
        lane_group2 a;
        for (int k = 0; k < 4; k++) a.x[k] = a.y[k] = vdupq_n_f32(0.0f);
        a = add_products2(a, q, own + rx, own + ry, self_weights, channels);
        a = add_products2(a, q, other + rx, other + ry, other_weights, channels);
        for (int k = 0; k < 4; k++) sx[4 * q + k] = a.x[k], sy[4 * q + k] = a.y[k];
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

/// ck_quantize_u8 of 16 values (ck_math_neon.h).
static inline uint8x16_t quantize16(float32x4x4_t x, ck_u8_grid_neon grid) {
    return ck_quantize_u8x16_neon(x.val[0], x.val[1], x.val[2], x.val[3], grid);
}

/// One gate's bytes for `blocks` blocks of 16 channels: q(own) into *qo, q(a·other) into *qc, all four pointers
/// advanced; store_pixel's arithmetic (a·other rounded, then ck_quantize_u8x16_neon's steps) in assembly, 50
/// instructions per 16 channels where clang's loop took 58 (it addressed the rows by the channel and kept one of
/// its pointers on the stack).
#define CK_GATE_QUANTIZE16(A, B, C, D)                                                                          \
    "fmul v" #A ".4s, v" #A ".4s, %[inv].4s\n\t"                                                                 \
    "fmul v" #B ".4s, v" #B ".4s, %[inv].4s\n\t"                                                                 \
    "fmul v" #C ".4s, v" #C ".4s, %[inv].4s\n\t"                                                                 \
    "fmul v" #D ".4s, v" #D ".4s, %[inv].4s\n\t"                                                                 \
    "fmaxnm v" #A ".4s, v" #A ".4s, %[lo].4s\n\t"                                                                \
    "fmaxnm v" #B ".4s, v" #B ".4s, %[lo].4s\n\t"                                                                \
    "fmaxnm v" #C ".4s, v" #C ".4s, %[lo].4s\n\t"                                                                \
    "fmaxnm v" #D ".4s, v" #D ".4s, %[lo].4s\n\t"                                                                \
    "fcvtns v" #A ".4s, v" #A ".4s\n\t"                                                                          \
    "fcvtns v" #B ".4s, v" #B ".4s\n\t"                                                                          \
    "fcvtns v" #C ".4s, v" #C ".4s\n\t"                                                                          \
    "fcvtns v" #D ".4s, v" #D ".4s\n\t"                                                                          \
    "sqxtn v" #A ".4h, v" #A ".4s\n\t"                                                                           \
    "sqxtn2 v" #A ".8h, v" #B ".4s\n\t"                                                                          \
    "sqxtn v" #C ".4h, v" #C ".4s\n\t"                                                                           \
    "sqxtn2 v" #C ".8h, v" #D ".4s\n\t"                                                                          \
    "sqadd v" #A ".8h, v" #A ".8h, %[zp].8h\n\t"                                                                 \
    "sqadd v" #C ".8h, v" #C ".8h, %[zp].8h\n\t"                                                                 \
    "sqxtun v" #A ".8b, v" #A ".8h\n\t"                                                                          \
    "sqxtun2 v" #A ".16b, v" #C ".8h\n\t"
static inline void store16_one_gate(const float **own, const float **other, uint8_t **qo, uint8_t **qc, size_t blocks,
                                    float32x4_t a, ck_u8_grid_neon grid) {
    __asm__ volatile("1:\n\t"
                     "ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [%[own]], #64\n\t" CK_GATE_QUANTIZE16(0, 1, 2, 3)
                     "st1 {v0.16b}, [%[qo]], #16\n\t"
                     "ld1 {v4.4s, v5.4s, v6.4s, v7.4s}, [%[other]], #64\n\t"
                     "fmul v4.4s, v4.4s, %[a].4s\n\t"
                     "fmul v5.4s, v5.4s, %[a].4s\n\t"
                     "fmul v6.4s, v6.4s, %[a].4s\n\t"
                     "fmul v7.4s, v7.4s, %[a].4s\n\t" CK_GATE_QUANTIZE16(4, 5, 6, 7)
                     "st1 {v4.16b}, [%[qc]], #16\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "b.ne 1b"
                     : [own] "+r"(*own), [other] "+r"(*other), [qo] "+r"(*qo), [qc] "+r"(*qc), [n] "+r"(blocks)
                     : [a] "w"(a), [inv] "w"(grid.inv), [lo] "w"(grid.lo), [zp] "w"(grid.zp)
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7");
}
#undef CK_GATE_QUANTIZE16

/// Row `q` of the output: q(own) then q(Σ_g a_g·others_g), each `channels` bytes. (`gates` is a constant where
/// it is 1, the demo's two tasks: then the gate loop is gone.)
static inline __attribute__((always_inline)) void store_pixel(uint8_t *q, const float *f, const float *const *others, size_t row,
                                                               size_t channels, size_t gates, const float *a, float inv_scale,
                                                               int32_t zero_point) {
    const ck_u8_grid_neon grid = ck_u8_grid_neon_make(inv_scale, zero_point);
    const float *o0 = others[0] + row;
    const float a0 = a[0];
    size_t c = 0;
    if (gates == 1 && channels >= 16) {
        const float *pf = f, *po = o0;
        uint8_t *pq = q, *pc = q + channels;
        c = channels / 16 * 16;
        store16_one_gate(&pf, &po, &pq, &pc, channels / 16, vdupq_n_f32(a0), grid);
    }
    for (; c + 16 <= channels; c += 16) {
        vst1q_u8(q + c, quantize16(vld1q_f32_x4(f + c), grid));
        // The first product is not added to +0 (as in the portable version).
        float32x4x4_t cross = vld1q_f32_x4(o0 + c);
        for (int k = 0; k < 4; k++) cross.val[k] = vmulq_n_f32(cross.val[k], a0);
        for (size_t g = 1; g < gates; g++) {
            const float32x4x4_t o = vld1q_f32_x4(others[g] + row + c);
            for (int k = 0; k < 4; k++) cross.val[k] = vaddq_f32(cross.val[k], vmulq_n_f32(o.val[k], a[g]));
        }
        vst1q_u8(q + channels + c, quantize16(cross, grid));
    }
#pragma clang loop vectorize(disable) // the last few channels, as the portable version computes each
    for (; c < channels; c++) {
        q[c] = ck_quantize_u8(f[c], inv_scale, zero_point);
        float cross = a0 * o0[c];
        for (size_t g = 1; g < gates; g++) cross = cross + a[g] * others[g][row + c];
        q[channels + c] = ck_quantize_u8(cross, inv_scale, zero_point);
    }
}

/// 1 / (1 + ck_expf(−s)) on 4 lanes: ck_expf's steps in its order, each a rounding of its own as there (built with
/// contraction off: no fused multiply-add); its clamps as fmax/fmin (NaN passes both, as the comparisons let it),
/// its rounding by adding and removing 1.5·2²³, (int32_t)n as fcvtzs. Both pixels' gates in one go: as two scalar
/// calls the exps were a tenth of this kernel's instructions on cortex-a72 (their constants made again per call).
static inline float32x4_t sigmoid4(float32x4_t s) {
    const float32x4_t x = vminq_f32(vmaxq_f32(vnegq_f32(s), vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    const float32x4_t shifter = vdupq_n_f32(12582912.0f);
    const float32x4_t n = vsubq_f32(vaddq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)), shifter), shifter);
    const float32x4_t r = vsubq_f32(vsubq_f32(x, vmulq_f32(n, vdupq_n_f32(0.693145751953125f))),
                                    vmulq_f32(n, vdupq_n_f32(1.428606765330187045e-06f)));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f / 720.0f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f / 120.0f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f / 24.0f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f / 6.0f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(0.5f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f));
    p = vaddq_f32(vmulq_f32(p, r), vdupq_n_f32(1.0f));
    const int32x4_t bits = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t one = vdupq_n_f32(1.0f);
    return vdivq_f32(one, vaddq_f32(one, vmulq_f32(p, vreinterpretq_f32_s32(bits))));
}

/// a_g of pixels x and y (rows rx, ry) for every gate, into ax[g] and ay[g].
static inline void gate_values2(const float *own, const float *const *others, size_t rx, size_t ry, size_t channels, size_t gates,
                                const float *const *self_weights, const float *const *other_weights, const float *bias, float *ax,
                                float *ay) {
    for (size_t g = 0; g < gates; g++) {
        float32x4_t sx[16], sy[16];
        dot_products2(sx, sy, own, others[g], rx, ry, self_weights[g], other_weights[g], channels);
        const float32x4_t a = sigmoid4(vsetq_lane_f32(sum_lanes(sy) + bias[g], vdupq_n_f32(sum_lanes(sx) + bias[g]), 1));
        ax[g] = vgetq_lane_f32(a, 0);
        ay[g] = vgetq_lane_f32(a, 1);
    }
}

void ck_gate_concat_u8_neon(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                            size_t gates, const float *const *self_weights, const float *const *other_weights,
                            const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                            float *scratch) {
    _Static_assert(CK_GATE_CHUNK >= 2, "scratch holds two pixels' gate values");
    if (!ck_u8_zero_point_neon(zero_point)) {
        ck_gate_concat_u8_portable(own, others, ld, pixels, channels, gates, self_weights, other_weights, bias, inv_scale,
                                   zero_point, out, ldo, scratch);
        return;
    }
    float *ax = scratch, *ay = scratch + gates; // two pixels' gate values
    // Pairs of pixels; an odd last one is paired with itself.
    for (size_t p = 0; p < pixels; p += 2) {
        const size_t p1 = p + 1 < pixels ? p + 1 : p, rx = p * ld, ry = p1 * ld;
        gate_values2(own, others, rx, ry, channels, gates, self_weights, other_weights, bias, ax, ay);
        if (gates == 1) {
            store_pixel(out + p * ldo, own + rx, others, rx, channels, 1, ax, inv_scale, zero_point);
            if (p1 != p) store_pixel(out + p1 * ldo, own + ry, others, ry, channels, 1, ay, inv_scale, zero_point);
        } else {
            store_pixel(out + p * ldo, own + rx, others, rx, channels, gates, ax, inv_scale, zero_point);
            if (p1 != p) store_pixel(out + p1 * ldo, own + ry, others, ry, channels, gates, ay, inv_scale, zero_point);
        }
    }
}
#endif
