// AArch64 NEON version of the Mix-FFN's depthwise 3×3 convolution + bias + exact GELU, u8 → u8
// (see ck_dwconv3x3_gelu_u8 in ckernels_q8.h); chosen by ops_dispatch.c.
//
// Bit for bit the portable version as clang builds it for AArch64 (ck_math_neon.h says why
// that is possible): per channel the taps are summed in the same order (rows top to bottom,
// left to right, taps outside the map skipped, not added as zero), each as one fused
// multiply-add of (q − zp)·w onto the sum, then the same GELU and quantization. What changes
// is where the work goes: 16 channels at a time with the 9 sums in 4 registers (the portable
// loop keeps them in the scratch array, a load and a store per tap), q − zp made a float by a
// table lookup and a subtraction (exact: the same value as (float)q − zp; widen16) once per pair
// of pixels where two neighbours have all their taps (each input column serves both), the GELU's erf
// coefficients by table lookup, 16 values at a time (finish16), and the quantization with fcvtns.
// Instructions per inference under qemu-user, demo MTLSegFormer at 256², cortex-a76 (Tests/ARM64/profile.sh):
// the GELU with the exp and division of Abramowitz & Stegun's erf, before the pieces, took 33.9 M in finish16.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"

#include <string.h>

/// What widen16 needs: table lookups that put each byte q under the bytes 00 00 4B (the float 2²³ + q, exact), and
/// 2²³ + zp to subtract (exact too: both are integers below 2²⁴). Made once per call.
typedef struct {
    uint8x16_t index[4];
    uint8x16_t exponent; // byte 16 of the table: 0x00, byte 17: 0x4B
    float32x4_t offset;  // 2²³ + zp
} widen_k;

static inline widen_k widen_constants(int32_t zero_point) {
    widen_k k;
    for (int i = 0; i < 4; i++) {
        uint8_t index[16];
        for (int l = 0; l < 4; l++) index[4 * l] = (uint8_t)(4 * i + l), index[4 * l + 1] = index[4 * l + 2] = 16, index[4 * l + 3] = 17;
        k.index[i] = vld1q_u8(index);
    }
    const uint8_t exponent[16] = {0x00, 0x4B};
    k.exponent = vld1q_u8(exponent);
    k.offset = vdupq_n_f32(8388608.0f + (float)zero_point);
    return k;
}

/// q − zp of the 16 bytes at p, as 4 float vectors: (2²³ + q) − (2²³ + zp), exact, in 2 instructions per 4 bytes (a
/// table lookup and a subtraction) where widening to 16 and 32 bits and converting took 3.
static inline void widen16(const uint8_t *p, const widen_k *k, float32x4_t v[4]) {
    const uint8x16x2_t table = {{vld1q_u8(p), k->exponent}};
    for (int i = 0; i < 4; i++) v[i] = vsubq_f32(vreinterpretq_f32_u8(vqtbl2q_u8(table, k->index[i])), k->offset);
}

/// acc += v·w on 16 channels, one fused multiply-add each.
static inline void tap16(float32x4_t acc[4], const float32x4_t v[4], const float *w) {
    for (int i = 0; i < 4; i++) acc[i] = vfmaq_f32(acc[i], v[i], vld1q_f32(w + 4 * i));
}

/// 16 channels' sums (at `c`) to bytes: ·in_scale + bias fused, then ck_gelu_scaled (ck_math.h) operation for
/// operation, its erf's coefficients read from ck_erf_pieces by table lookup (tbl over the 4 registers of a 16-float
/// table, byte indexes 4·piece + 0…3), then rounded to nearest even and offset by the zero point (fcvtns and a
/// saturating add: the portable version's round_even and clamps where both are exact, |v| < 2²²; saturated to 0 or
/// 255 alike beyond; a NaN, which only −∞ gives and finite weights never do, has no defined byte in the portable C).
/// Not inlined: inlined into the pair's loop, the second pixel's sums spilled.
static __attribute__((noinline)) void finish16(const float32x4_t acc[4], size_t c, const float *bias, float in_scale, float half_scale,
                                               int32_t out_zp, uint8_t *o) {
    float32x4_t x[4], u[4], p[4];
    uint8x16_t index[4];
    for (int i = 0; i < 4; i++) {
        x[i] = vfmaq_f32(vld1q_f32(bias + c + 4 * i), acc[i], vdupq_n_f32(in_scale)); // acc·s + b, fused
        const float32x4_t t = vminq_f32(vmulq_f32(vabsq_f32(x[i]), vdupq_n_f32(2.82842712474619009760f)), vdupq_n_f32(15.999999f));
        const int32x4_t piece = vcvtq_s32_f32(t); // ⌊t⌋: t ≥ 0
        u[i] = vsubq_f32(t, vcvtq_f32_s32(piece));
        index[i] = vreinterpretq_u8_s32(vmlaq_s32(vdupq_n_s32(0x03020100), piece, vdupq_n_s32(0x04040404)));
    }
    const uint8x16x4_t highest = vld1q_u8_x4((const uint8_t *)ck_erf_pieces[4]);
    for (int i = 0; i < 4; i++) p[i] = vreinterpretq_f32_u8(vqtbl4q_u8(highest, index[i]));
    for (int j = 3; j >= 0; j--) {
        const uint8x16x4_t table = vld1q_u8_x4((const uint8_t *)ck_erf_pieces[j]);
        for (int i = 0; i < 4; i++) p[i] = vfmaq_f32(vreinterpretq_f32_u8(vqtbl4q_u8(table, index[i])), p[i], u[i]);
    }
    int32x4_t q[4];
    for (int i = 0; i < 4; i++) {
        const uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(x[i]), vdupq_n_u32(0x80000000u));
        const float32x4_t erf = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(p[i]), sign));
        const float32x4_t hx = vmulq_f32(x[i], vdupq_n_f32(half_scale));
        q[i] = vqaddq_s32(vcvtnq_s32_f32(vfmaq_f32(hx, hx, erf)), vdupq_n_s32(out_zp));
    }
    vst1q_u8(o + c, ck_pack_u8x16_neon(q[0], q[1], q[2], q[3]));
}

/// The 16 channels at `c` of one output pixel from its taps (`count` of them, in order).
static inline void block16(const uint8_t *const *taps, const float *const *wt, size_t count, size_t c, const widen_k *wk,
                           const float *bias, float in_scale, float half_scale, int32_t out_zp, uint8_t *o) {
    float32x4_t acc[4] = {vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
    for (size_t t = 0; t < count; t++) {
        float32x4_t v[4];
        widen16(taps[t] + c, wk, v);
        tap16(acc, v, wt[t] + c);
    }
    finish16(acc, c, bias, in_scale, half_scale, out_zp, o);
}

/// The 16 channels at `c` of two neighbouring pixels that have all 9 taps (`corner`: the left
/// one's top-left tap; rows `row` bytes apart, pixels ldi): per row their 4 columns of taps are
/// converted once each (12 conversions instead of 18) and each column is added to the pixels it
/// is a tap of, column by column: each pixel still gets its taps row by row, left to right.
static inline void block16_pair(const uint8_t *corner, size_t row, size_t ldi, const float *weight, size_t channels, size_t c,
                                const widen_k *wk, const float *bias, float in_scale, float half_scale, int32_t out_zp,
                                uint8_t *o0, uint8_t *o1) {
    float32x4_t a0[4], a1[4];
    for (int i = 0; i < 4; i++) a0[i] = a1[i] = vdupq_n_f32(0.0f);
    for (size_t r = 0; r < 3; r++) {
        const float *w = weight + r * 3 * channels + c;
        float32x4_t v[4];
        widen16(corner + r * row + c, wk, v);
        tap16(a0, v, w);
        widen16(corner + r * row + ldi + c, wk, v);
        tap16(a0, v, w + channels);
        tap16(a1, v, w);
        widen16(corner + r * row + 2 * ldi + c, wk, v);
        tap16(a0, v, w + 2 * channels);
        tap16(a1, v, w + channels);
        widen16(corner + r * row + 3 * ldi + c, wk, v);
        tap16(a1, v, w + 2 * channels);
    }
    finish16(a0, c, bias, in_scale, half_scale, out_zp, o0);
    finish16(a1, c, bias, in_scale, half_scale, out_zp, o1);
}

/// The taps of pixel (y, x) inside the map, in order, with their weight rows; returns how many.
static inline size_t gather_taps(const uint8_t *in, size_t ldi, size_t height, size_t width, const float *weight,
                                 size_t channels, size_t y, size_t x, const uint8_t *taps[9], const float *wt[9],
                                 size_t tap_index[9]) {
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
            tap_index[count] = tap;
            count++;
        }
    }
    return count;
}

void ck_dwconv3x3_gelu_u8_neon(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                               size_t channels, const float *weight, const float *bias, float in_scale,
                               int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point, size_t first_row,
                               size_t row_count, float *scratch) {
    (void)scratch; // the sums stay in registers
    const size_t full = channels / 16 * 16, rest = channels - full;
    const widen_k widen = widen_constants(in_zero_point);
    const int32_t out_zp = out_zero_point;
    const float half_scale = 0.5f * out_inv_scale; // as the portable version computes it
    // A last block of fewer than 16 channels runs on zero-padded copies of its taps, weights and
    // bias (the arrays hold only `channels` entries), and stores only its own channels.
    float wpad[9][16], bpad[16];
    uint8_t tpad[9][16], opad[16];
    if (rest) {
        memset(wpad, 0, sizeof wpad);
        memset(bpad, 0, sizeof bpad);
        memset(tpad, 0, sizeof tpad);
        for (size_t t = 0; t < 9; t++)
            for (size_t i = 0; i < rest; i++) wpad[t][i] = weight[t * channels + full + i];
        for (size_t i = 0; i < rest; i++) bpad[i] = bias[full + i];
    }
    for (size_t y = first_row; y < first_row + row_count && y < height; y++) {
        const int row_inside = y > 0 && y + 1 < height;
        for (size_t x = 0; x < width; x++) {
            // Pixels x and x + 1 both with all 9 taps: their full blocks as a pair.
            const int pair = row_inside && full && x > 0 && x + 2 < width;
            const size_t last = pair ? x + 1 : x;
            if (pair) {
                const uint8_t *corner = in + ((y - 1) * width + (x - 1)) * ldi;
                uint8_t *o = out + (y * width + x) * ldo;
                for (size_t c = 0; c < full; c += 16)
                    block16_pair(corner, width * ldi, ldi, weight, channels, c, &widen, bias, in_scale, half_scale, out_zp, o,
                                 o + ldo);
            }
            for (size_t px = x; px <= last; px++) { // the blocks not done as a pair
                const uint8_t *taps[9];
                const float *wt[9];
                size_t tap_index[9];
                const size_t count = gather_taps(in, ldi, height, width, weight, channels, y, px, taps, wt, tap_index);
                uint8_t *o = out + (y * width + px) * ldo;
                if (!pair)
                    for (size_t c = 0; c < full; c += 16)
                        block16(taps, wt, count, c, &widen, bias, in_scale, half_scale, out_zp, o);
                if (rest) {
                    const uint8_t *taps_rest[9];
                    const float *wt_rest[9];
                    for (size_t t = 0; t < count; t++) {
                        for (size_t i = 0; i < rest; i++) tpad[t][i] = taps[t][full + i];
                        taps_rest[t] = tpad[t];
                        wt_rest[t] = wpad[tap_index[t]];
                    }
                    block16(taps_rest, wt_rest, count, 0, &widen, bpad, in_scale, half_scale, out_zp, opad);
                    for (size_t i = 0; i < rest; i++) o[full + i] = opad[i];
                }
            }
            x = last;
        }
    }
}
#endif
