#ifndef CK_MATH_NEON_H
#define CK_MATH_NEON_H
// ck_math.h's u8 quantization on 4 floats, for the AArch64 NEON kernels, rounding for rounding like
// the portable C does when clang compiles it for AArch64: clang contracts a·b + c inside one
// expression into a fused multiply-add (-ffp-contract=on, its default), and AArch64 always has the
// instruction. So every `a * b + c` of ck_math.h is one vfmaq/vfmsq in a NEON version, and every
// product that is an argument or a factor of another product is a separate vmulq. The results are
// then bit for bit those of the portable version on AArch64 (ops_check --check verifies it under
// qemu). The NEON code must not be built with -ffp-contract=off while the portable C is built with it
// on (or the reverse).
#include <arm_neon.h>
#include <stdint.h>

/// ck_quantize_u8 on 4 values, as uint32 lanes (0–255): the product is rounded before the
/// round-to-even shift (it is a function argument there, so never contracted).
static inline uint32x4_t ck_quantize_u8_neon(float32x4_t x, float inv_scale, float zero_point) {
    const float32x4_t shifter = vdupq_n_f32(12582912.0f);
    float32x4_t v = vsubq_f32(vaddq_f32(vmulq_f32(x, vdupq_n_f32(inv_scale)), shifter), shifter);
    v = vaddq_f32(v, vdupq_n_f32(zero_point));
    v = vminq_f32(vmaxq_f32(v, vdupq_n_f32(0.0f)), vdupq_n_f32(255.0f));
    return vcvtq_u32_f32(v);
}

/// ck_quantize_u8 on 4 values as int32 lanes, in fewer instructions than the step-for-step copy
/// above and with the same results: fcvtns rounds half to even as the 1.5·2²³ trick does wherever
/// that trick is exact (|x·inv_scale| < 2²²), and both land far outside the byte range elsewhere
/// (fcvtns saturates, and so does the add of the zero point); a NaN, which the portable clamps
/// let through to a conversion that gives 0, is masked to 0. Negative lanes and lanes past 255
/// are left for the saturating narrows of ck_pack_u8x16_neon.
static inline int32x4_t ck_quantize_s32_neon(float32x4_t x, float32x4_t inv_scale, int32x4_t zero_point) {
    const float32x4_t v = vmulq_f32(x, inv_scale);
    const int32x4_t q = vqaddq_s32(vcvtnq_s32_f32(v), zero_point);
    return vandq_s32(q, vreinterpretq_s32_u32(vceqq_f32(v, v)));
}

/// Four int32 lanes of each of a..d clamped to 0–255 (saturating narrows), as 16 bytes.
static inline uint8x16_t ck_pack_u8x16_neon(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
    const uint16x8_t lo = vcombine_u16(vqmovun_s32(a), vqmovun_s32(b)), hi = vcombine_u16(vqmovun_s32(c), vqmovun_s32(d));
    return vcombine_u8(vqmovn_u16(lo), vqmovn_u16(hi));
}

/// Four lanes of 0–255 from each of a..d, as 16 bytes.
static inline uint8x16_t ck_narrow_u8x16_neon(uint32x4_t a, uint32x4_t b, uint32x4_t c, uint32x4_t d) {
    const uint16x8_t lo = vcombine_u16(vmovn_u32(a), vmovn_u32(b)), hi = vcombine_u16(vmovn_u32(c), vmovn_u32(d));
    return vcombine_u8(vmovn_u16(lo), vmovn_u16(hi));
}

#endif
