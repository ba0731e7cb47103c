#ifndef CK_MATH_NEON_H
#define CK_MATH_NEON_H
// ck_math.h's u8 quantization on 16 floats, for the AArch64 NEON kernels, rounding for rounding like
// the portable C does when clang compiles it for AArch64: clang contracts a·b + c inside one
// expression into a fused multiply-add (-ffp-contract=on, its default), and AArch64 always has the
// instruction. So every `a * b + c` of ck_math.h is one vfmaq/vfmsq in a NEON version, and every
// product that is an argument or a factor of another product is a separate vmulq. The results are
// then bit for bit those of the portable version on AArch64 (ops_check --check verifies it under
// qemu). The NEON code must not be built with -ffp-contract=off while the portable C is built with it
// on (or the reverse).
#include <arm_neon.h>
#include <stdint.h>

/// A u8 grid for ck_quantize_u8x16_neon: 1/scale, the zero point's negation as floats (the lower clamp) and the
/// zero point as int16 lanes. Only for zero points 0–255, a u8 grid's (ck_u8_zero_point_neon): the kernels using
/// it send anything else to their portable versions.
typedef struct {
    float32x4_t inv, lo;
    int16x8_t zp;
} ck_u8_grid_neon;

static inline int ck_u8_zero_point_neon(int32_t zero_point) { return zero_point >= 0 && zero_point <= 255; }

static inline ck_u8_grid_neon ck_u8_grid_neon_make(float inv_scale, int32_t zero_point) {
    const ck_u8_grid_neon g = {vdupq_n_f32(inv_scale), vdupq_n_f32((float)-zero_point), vdupq_n_s16((int16_t)zero_point)};
    return g;
}

/// ck_quantize_u8 of 16 values (a, b, c, d: 4 each), in 20 instructions where its steps one by one take 40 and
/// clamps and masks in 32 bits took 26: x·inv rounded, fmaxnm with −zp (ck_quantize_u8's lower clamp moved
/// before the rounding, the same as −zp is an integer; it also turns a NaN into −zp, so into byte 0 as there), fcvtns
/// (round half to even as the 1.5·2²³ trick wherever that trick is exact, |x·inv| < 2²², and saturating far outside the
/// bytes elsewhere), narrowed to int16 with saturation, + zp with saturation, narrowed to 0–255 with saturation: the
/// clamp of value + zp to 0–255 exactly for a zero point of 0–255 (a value saturated at 32767 stays past 255 after
/// the add).
static inline uint8x16_t ck_quantize_u8x16_neon(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d, ck_u8_grid_neon g) {
    const int32x4_t qa = vcvtnq_s32_f32(vmaxnmq_f32(vmulq_f32(a, g.inv), g.lo));
    const int32x4_t qb = vcvtnq_s32_f32(vmaxnmq_f32(vmulq_f32(b, g.inv), g.lo));
    const int32x4_t qc = vcvtnq_s32_f32(vmaxnmq_f32(vmulq_f32(c, g.inv), g.lo));
    const int32x4_t qd = vcvtnq_s32_f32(vmaxnmq_f32(vmulq_f32(d, g.inv), g.lo));
    const int16x8_t lo = vqaddq_s16(vcombine_s16(vqmovn_s32(qa), vqmovn_s32(qb)), g.zp);
    const int16x8_t hi = vqaddq_s16(vcombine_s16(vqmovn_s32(qc), vqmovn_s32(qd)), g.zp);
    return vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi));
}

#endif
