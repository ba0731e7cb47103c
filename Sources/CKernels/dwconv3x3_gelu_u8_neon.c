// AArch64 NEON version of the Mix-FFN's depthwise 3×3 convolution + bias + exact GELU, u8 → u8
// (see ck_dwconv3x3_gelu_u8 in ckernels_q8.h); chosen by ops_dispatch.c.
//
// Bit for bit the portable version as clang builds it for AArch64 (ck_math_neon.h says why that is possible): per
// channel the taps are summed in the same order (rows top to bottom, left to right, taps outside the map skipped,
// not added as zero), each as one fused multiply-add of (q − zp)·w onto the sum, then ·in_scale + bias fused, the
// same GELU (ck_gelu_scaled) and the same rounding. What changes is where the work goes, in two passes per run of
// up to 8 pixels of a row and up to CHUNK channels:
//  - the taps (taps_group): 8 channels of all the run's pixels at a time, their sums in 16 registers. Each input
//    column of a tap row is converted to floats once and added to every pixel it is a tap of (up to 3), so a run of
//    8 pixels converts 10 columns per row where pixel by pixel it would convert 24. The sums leave as
//    acc·in_scale + bias into a small float buffer.
//  - the GELU (gelu_run) over that buffer, 16 values at a time in a loop that keeps the erf's 5 coefficient tables
//    (ck_erf_pieces: tbl over 4 registers each) in registers for the whole run.
// Before (one pass per 16 channels of one or two pixels, 12 conversions per pair of pixels and 16 channels, the
// GELU in a function called per 16 values that reloaded its tables and saved registers each time), in instructions
// per inference under qemu-user, demo MTLSegFormer at 256², cortex-a76 (Tests/ARM64/profile.sh): the taps
// 19.2 → 14.8 M (15.9 M with the column loads as ldr + add, which clang made of a pointer advanced after a load), the
// GELU 19.3 → 12.8 M. The same on the cortex-a72 (no dot product is involved).
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include "ck_math.h"
#include "ck_math_neon.h"

#include <string.h>

#define INLINE static inline __attribute__((always_inline))

enum {
    RUN = 8,     // pixels of a row whose taps are summed together (16 sum registers at 8 channels each)
    CHUNK = 256, // channels per pass over a run (the float buffer: RUN·CHUNK·4 bytes on the stack)
};

/// The 8 bytes at *column, and *column advanced by `step`: one ld1 post-indexed by a register (in assembly: clang
/// made it a load and an add).
INLINE uint8x8_t load8_advance(const uint8_t **column, size_t step) {
    uint8x8_t bytes;
    __asm__("ld1 {%[b].8b}, [%[p]], %[step]"
            : [b] "=w"(bytes), [p] "+r"(*column)
            : [step] "r"(step), "m"(*(const uint8_t(*)[8]) * column));
    return bytes;
}

/// q − zp of 8 bytes as two float vectors: subtracted in 16 bits (exact: −255 … 255), widened and converted
/// (exact): the value (float)q − zp of the portable version.
INLINE void widen8(uint8x8_t bytes, uint8x8_t zp, float32x4_t v[2]) {
    const int16x8_t d = vreinterpretq_s16_u16(vsubl_u8(bytes, zp));
    v[0] = vcvtq_f32_s32(vmovl_s16(vget_low_s16(d)));
    v[1] = vcvtq_f32_s32(vmovl_high_s16(d));
}

/// Where a run of pixels lies in the map, and which of its taps exist.
typedef struct {
    const uint8_t *pixel; // the run's first pixel, (y, x0); pixels ldi bytes apart, rows row_bytes apart
    size_t ldi, row_bytes, channels;
    int row_first, row_last;   // tap rows row_first … row_last of 0 (y − 1), 1 (y), 2 (y + 1): those inside the map
    int skip_left, skip_right; // the column left of the run (x0 − 1), or right of it, is outside the map
} run_place;

/// Column j of the run's tap row r: the input pixel (y − 1 + r, x0 − 1 + j). Only for pixels inside the map.
static inline const uint8_t *column_at(const run_place *pl, int r, int j) {
    return pl->pixel + ((ptrdiff_t)r - 1) * (ptrdiff_t)pl->row_bytes + ((ptrdiff_t)j - 1) * (ptrdiff_t)pl->ldi;
}

/// x[p][c − c0] = (Σ taps)·in_scale + bias[c] for the run's `count` pixels p (constant at each call: the loops
/// unroll and the sums stay in registers) and channels c0 … c_end − 1, 8 at a time.
INLINE void taps_group(const run_place *pl, int count, const float *weight, const float *bias, float in_scale,
                       int32_t in_zero_point, size_t c0, size_t c_end, float x[RUN][CHUNK]) {
    const size_t ch = pl->channels, ldi = pl->ldi;
    const uint8x8_t zp8 = vdup_n_u8((uint8_t)in_zero_point);
    // The columns that exist, derived here from the constant count (stored in run_place, the last would be a
    // run-time value, and every unrolled column a test: 0.24 M instructions more per demo inference).
    const int first = pl->skip_left, last = pl->skip_right ? count : count + 1;
    for (size_t c = c0; c < c_end; c += 8) {
        float32x4_t acc[RUN][2];
        for (int p = 0; p < count; p++) acc[p][0] = acc[p][1] = vdupq_n_f32(0.0f);
        for (int r = pl->row_first; r <= pl->row_last; r++) {
            const float *w = weight + (size_t)r * 3 * ch + c;
            const float32x4_t w0[2] = {vld1q_f32(w), vld1q_f32(w + 4)};
            const float32x4_t w1[2] = {vld1q_f32(w + ch), vld1q_f32(w + ch + 4)};
            const float32x4_t w2[2] = {vld1q_f32(w + 2 * ch), vld1q_f32(w + 2 * ch + 4)};
            const uint8_t *column = column_at(pl, r, first) + c;
#pragma clang loop unroll(full)
            for (int j = 0; j <= count + 1; j++) {
                if (j < first || j > last) continue;
                float32x4_t v[2];
                widen8(load8_advance(&column, ldi), zp8, v);
                // Column j is tap dx = j − p of pixel p: for each pixel, dx grows with j (left to right).
                for (int h = 0; h < 2; h++) {
                    if (j < count) acc[j][h] = vfmaq_f32(acc[j][h], v[h], w0[h]);
                    if (j >= 1 && j - 1 < count) acc[j - 1][h] = vfmaq_f32(acc[j - 1][h], v[h], w1[h]);
                    if (j >= 2) acc[j - 2][h] = vfmaq_f32(acc[j - 2][h], v[h], w2[h]);
                }
            }
        }
        for (int p = 0; p < count; p++)
            for (int h = 0; h < 2; h++)
                vst1q_f32(x[p] + (c - c0) + 4 * h, vfmaq_n_f32(vld1q_f32(bias + c + 4 * h), acc[p][h], in_scale));
    }
}

/// taps_group's values for channels c_begin … c_end − 1 (the last, fewer than 8), one at a time: the same
/// operations, each multiply-add fused as the portable version's are.
static __attribute__((noinline)) void taps_one_by_one(const run_place *pl, int count, const float *weight,
                                                      const float *bias, float in_scale, int32_t in_zero_point,
                                                      size_t c0, size_t c_begin, size_t c_end, float x[RUN][CHUNK]) {
    const float zp = (float)in_zero_point;
    const int first = pl->skip_left, last = pl->skip_right ? count : count + 1;
    for (int p = 0; p < count; p++)
        for (size_t c = c_begin; c < c_end; c++) {
            float acc = 0.0f;
            for (int r = pl->row_first; r <= pl->row_last; r++)
                for (int dx = 0; dx < 3; dx++) {
                    const int j = p + dx;
                    if (j < first || j > last) continue;
                    const float w = weight[(size_t)(r * 3 + dx) * pl->channels + c];
                    acc = __builtin_fmaf((float)column_at(pl, r, j)[c] - zp, w, acc);
                }
            x[p][c - c0] = __builtin_fmaf(acc, in_scale, bias[c]);
        }
}

/// The GELU's constants, as gelu16's assembly loads them.
typedef struct {
    float scalars[4];  // 4/√2 (|x| to the erf's table position t), half_scale, and 0x04040404 as bits
    float t_max[4];    // t is clamped below 16 (the last piece)
    uint32_t lane_bytes[4]; // 0x03020100: byte b of a lane reads byte 4·piece + b of a table
    int16_t zero_point[8];
} gelu_constants;

// One group of 4 values (at %[x], in v0) to 4 int32 bytes, ck_gelu_scaled rounded to nearest even + zero point,
// operation for operation: t = min(|x|·4/√2, 15.999999), piece = ⌊t⌋, u = t − piece, the index bytes
// 4·piece + 0…3, erf(|x|/√2) = c0 + u·(c1 + u·(c2 + u·(c3 + u·c4))) with c_j read by tbl from table j (v12 + 4j …),
// then hx + |hx|·erf where ck_gelu_scaled adds hx·(erf with x's sign): the same product exactly, since
// half_scale > 0 gives hx x's sign. Leaves the values rounded to nearest even, as int32, in v0.
#define CK_GELU4                                                                                                  \
    "ldr q0, [%[x]], #16\n\t"                                                                                     \
    "fabs v1.4s, v0.4s\n\t"                                                                                       \
    "fmul v1.4s, v1.4s, v8.s[0]\n\t"                                                                              \
    "fmin v1.4s, v1.4s, v9.4s\n\t"                                                                                \
    "fcvtzs v2.4s, v1.4s\n\t"                                                                                     \
    "scvtf v3.4s, v2.4s\n\t"                                                                                      \
    "fsub v1.4s, v1.4s, v3.4s\n\t"                                                                                \
    "mul v2.4s, v2.4s, v8.s[2]\n\t"                                                                               \
    "orr v2.16b, v2.16b, v10.16b\n\t"                                                                             \
    "tbl v3.16b, {v28.16b, v29.16b, v30.16b, v31.16b}, v2.16b\n\t"                                                \
    "tbl v4.16b, {v24.16b, v25.16b, v26.16b, v27.16b}, v2.16b\n\t"                                                \
    "fmla v4.4s, v3.4s, v1.4s\n\t"                                                                                \
    "tbl v3.16b, {v20.16b, v21.16b, v22.16b, v23.16b}, v2.16b\n\t"                                                \
    "fmla v3.4s, v4.4s, v1.4s\n\t"                                                                                \
    "tbl v4.16b, {v16.16b, v17.16b, v18.16b, v19.16b}, v2.16b\n\t"                                                \
    "fmla v4.4s, v3.4s, v1.4s\n\t"                                                                                \
    "tbl v3.16b, {v12.16b, v13.16b, v14.16b, v15.16b}, v2.16b\n\t"                                                \
    "fmla v3.4s, v4.4s, v1.4s\n\t"                                                                                \
    "fmul v0.4s, v0.4s, v8.s[1]\n\t"                                                                              \
    "fabs v1.4s, v0.4s\n\t"                                                                                       \
    "fmla v0.4s, v1.4s, v3.4s\n\t"                                                                                \
    "fcvtns v0.4s, v0.4s\n\t"

/// o[i] = the byte of the GELU of x[i] for i < 16·blocks, 16 values a pass: in assembly so that the erf's 5 tables
/// (20 registers) and the constants (4) stay in registers for the whole loop (with intrinsics clang interleaved 4
/// groups of 4 values and spilled the tables at every pass). The bytes: the 4 groups' int32 values narrowed to
/// int16 with saturation, + zp with saturation, narrowed to 0–255 with saturation: the portable clamp of value + zp
/// to 0–255 exactly, for a zero point of 0–255 (a value saturated at ±32767 stays beyond the byte range after the add).
static __attribute__((noinline)) void gelu16(const float *x, size_t blocks, const gelu_constants *k, uint8_t *o) {
    if (blocks == 0) return;
    __asm__ volatile("ld1 {v12.16b, v13.16b, v14.16b, v15.16b}, [%[tab]], #64\n\t"
                     "ld1 {v16.16b, v17.16b, v18.16b, v19.16b}, [%[tab]], #64\n\t"
                     "ld1 {v20.16b, v21.16b, v22.16b, v23.16b}, [%[tab]], #64\n\t"
                     "ld1 {v24.16b, v25.16b, v26.16b, v27.16b}, [%[tab]], #64\n\t"
                     "ld1 {v28.16b, v29.16b, v30.16b, v31.16b}, [%[tab]]\n\t"
                     "ld1 {v8.16b, v9.16b, v10.16b, v11.16b}, [%[k]]\n"
                     "1:\n\t" CK_GELU4 "sqxtn v5.4h, v0.4s\n\t" CK_GELU4 "sqxtn2 v5.8h, v0.4s\n\t" CK_GELU4
                     "sqxtn v6.4h, v0.4s\n\t" CK_GELU4 "sqxtn2 v6.8h, v0.4s\n\t"
                     "sqadd v5.8h, v5.8h, v11.8h\n\t"
                     "sqadd v6.8h, v6.8h, v11.8h\n\t"
                     "sqxtun v5.8b, v5.8h\n\t"
                     "sqxtun2 v5.16b, v6.8h\n\t"
                     "str q5, [%[o]], #16\n\t"
                     "subs %[n], %[n], #1\n\t"
                     "b.ne 1b\n\t"
                     : [x] "+r"(x), [o] "+r"(o), [n] "+r"(blocks)
                     : [tab] "r"(ck_erf_pieces), [k] "r"(k)
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v8", "v9", "v10", "v11", "v12", "v13",
                       "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27",
                       "v28", "v29", "v30", "v31");
}

/// o[i] = the byte of the GELU of x[i], i < n: whole blocks of 16, then the last 1–15 values through zero-padded
/// copies.
static void gelu_run(const float *x, size_t n, const gelu_constants *k, uint8_t *o) {
    gelu16(x, n / 16, k, o);
    const size_t done = n / 16 * 16;
    if (done < n) {
        float xpad[16] = {0};
        uint8_t opad[16];
        memcpy(xpad, x + done, (n - done) * sizeof(float));
        gelu16(xpad, 1, k, opad);
        memcpy(o + done, opad, n - done);
    }
}

/// One run of `count` pixels (constant at each call): channel chunk by chunk, the taps into `x`, then the GELU.
INLINE void run_pixels(const run_place *pl, int count, const float *weight, const float *bias, float in_scale,
                       int32_t in_zero_point, const gelu_constants *k, uint8_t *out, size_t ldo) {
    float x[RUN][CHUNK] __attribute__((aligned(16)));
    const size_t ch = pl->channels, full8 = ch / 8 * 8;
    for (size_t c0 = 0; c0 < ch; c0 += CHUNK) {
        const size_t c_end = ch - c0 < CHUNK ? ch : c0 + CHUNK, c_end8 = c_end < full8 ? c_end : full8;
        taps_group(pl, count, weight, bias, in_scale, in_zero_point, c0, c_end8, x);
        if (c_end8 < c_end) taps_one_by_one(pl, count, weight, bias, in_scale, in_zero_point, c0, c_end8, c_end, x);
        for (int p = 0; p < count; p++)
            gelu_run(x[p], c_end - c0, k, out + (size_t)p * ldo + c0);
    }
}

void ck_dwconv3x3_gelu_u8_neon(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                               size_t channels, const float *weight, const float *bias, float in_scale,
                               int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point, size_t first_row,
                               size_t row_count, float *scratch) {
    const float half_scale = 0.5f * out_inv_scale; // as the portable version computes it
    // widen8 subtracts the input's zero point in 8 bits, gelu16 adds the output's in 16, and the GELU's sign shortcut
    // (CK_GELU4) needs half_scale > 0: u8 grids have all three; anything else goes to the portable version (with the
    // caller's scratch, which it needs).
    if (in_zero_point < 0 || in_zero_point > 255 || out_zero_point < 0 || out_zero_point > 255 || !(half_scale > 0.0f)) {
        ck_dwconv3x3_gelu_u8_portable(in, ldi, out, ldo, height, width, channels, weight, bias, in_scale, in_zero_point,
                                      out_inv_scale, out_zero_point, first_row, row_count, scratch);
        return;
    }
    gelu_constants k = {.scalars = {2.82842712474619009760f, half_scale, 0.0f, 0.0f},
                         .t_max = {15.999999f, 15.999999f, 15.999999f, 15.999999f},
                         .lane_bytes = {0x03020100u, 0x03020100u, 0x03020100u, 0x03020100u},
                         .zero_point = {0}};
    for (int l = 0; l < 8; l++) k.zero_point[l] = (int16_t)out_zero_point;
    const uint32_t times_4_bytes = 0x04040404u;
    memcpy(&k.scalars[2], &times_4_bytes, 4);
    for (size_t y = first_row; y < first_row + row_count && y < height; y++)
        for (size_t x0 = 0; x0 < width; x0 += RUN) {
            const size_t count = width - x0 < RUN ? width - x0 : RUN;
            const run_place pl = {.pixel = in + (y * width + x0) * ldi, .ldi = ldi, .row_bytes = width * ldi, .channels = channels,
                                  .row_first = y == 0, .row_last = y + 1 < height ? 2 : 1,
                                  .skip_left = x0 == 0, .skip_right = x0 + count == width};
            uint8_t *o = out + (y * width + x0) * ldo;
            switch (count) { // each count its own unrolled code
            case 8: run_pixels(&pl, 8, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            case 7: run_pixels(&pl, 7, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            case 6: run_pixels(&pl, 6, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            case 5: run_pixels(&pl, 5, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            case 4: run_pixels(&pl, 4, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            case 3: run_pixels(&pl, 3, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            case 2: run_pixels(&pl, 2, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            default: run_pixels(&pl, 1, weight, bias, in_scale, in_zero_point, &k, o, ldo); break;
            }
        }
}
#endif
