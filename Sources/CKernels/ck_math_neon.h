#ifndef CK_MATH_NEON_H
#define CK_MATH_NEON_H
// ck_math.h's exp, erf, GELU and u8 quantization on 4 floats, for the AArch64 NEON kernels,
// rounding for rounding like the portable C does when clang compiles it for AArch64: clang
// contracts a·b + c inside one expression into a fused multiply-add (-ffp-contract=on, its
// default), and AArch64 always has the instruction. So every `a * b + c` of ck_math.h is one
// vfmaq/vfmsq here, and every product that is an argument or a factor of another product is
// a separate vmulq. The results are then bit for bit those of the portable version on
// AArch64 (ops_check --check verifies it under qemu). The NEON code must not be built with
// -ffp-contract=off while the portable C is built with it on (or the reverse).
#include <arm_neon.h>
#include <stdint.h>

/// ck_expf: clamp, n = (x·log2e + 1.5·2²³) − 1.5·2²³, two-part Cody-Waite, degree-7 Horner, scale by 2ⁿ.
static inline float32x4_t ck_expf_neon(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.0f)), vdupq_n_f32(88.0f));
    const float32x4_t shifter = vdupq_n_f32(12582912.0f);
    const float32x4_t n = vsubq_f32(vfmaq_f32(shifter, x, vdupq_n_f32(1.44269504088896341f)), shifter);
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f)); // fma(−n, c, x)
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-06f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

/// ck_erff (Abramowitz & Stegun 7.1.26), including its division.
static inline float32x4_t ck_erff_neon(float32x4_t x) {
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t a = vabsq_f32(x);
    const float32x4_t t = vdivq_f32(one, vfmaq_f32(one, vdupq_n_f32(0.3275911f), a));
    float32x4_t p = vdupq_n_f32(1.061405429f);
    p = vfmaq_f32(vdupq_n_f32(-1.453152027f), p, t);
    p = vfmaq_f32(vdupq_n_f32(1.421413741f), p, t);
    p = vfmaq_f32(vdupq_n_f32(-0.284496736f), p, t);
    p = vfmaq_f32(vdupq_n_f32(0.254829592f), p, t);
    const float32x4_t e = ck_expf_neon(vmulq_f32(vnegq_f32(a), a));
    const float32x4_t y = vfmsq_f32(one, vmulq_f32(p, t), e); // 1 − (p·t)·e, one rounding
    return vbslq_f32(vcltq_f32(x, vdupq_n_f32(0.0f)), vnegq_f32(y), y);
}

/// ck_gelu: (0.5·x)·(1 + erf(x·(1/√2))).
static inline float32x4_t ck_gelu_neon(float32x4_t x) {
    const float32x4_t erf = ck_erff_neon(vmulq_f32(x, vdupq_n_f32(0.70710678118654752440f)));
    return vmulq_f32(vmulq_f32(vdupq_n_f32(0.5f), x), vaddq_f32(vdupq_n_f32(1.0f), erf));
}

/// ck_gelu_neon's 20 constants, 4 to a vector, for ck_gelu_neon_k: [0] to [4] as written out there.
static const float ck_gelu_neon_constants[20] = {
    -87.0f, 88.0f, 12582912.0f, 1.44269504088896341f,
    0.693145751953125f, 1.428606765330187045e-06f, 1.0f / 5040.0f, 1.0f / 720.0f,
    1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f,
    1.0f, 0.3275911f, 1.061405429f, -1.453152027f,
    1.421413741f, -0.284496736f, 0.254829592f, 0.70710678118654752440f};

/// ck_gelu_neon, operation for operation, with its constants in 5 registers (k: ck_gelu_neon_constants,
/// loaded by the caller once): each constant is a lane, broadcast (dup) where it is an addend or a bound and
/// used by lane where it is a factor. Written out as immediates instead, clang built every constant anew
/// (mov, movk, dup) at each call of a kernel's out-of-line epilogue.
static inline float32x4_t ck_gelu_neon_k(float32x4_t x, const float32x4_t k[5]) {
    const float32x4_t one = vdupq_laneq_f32(k[3], 0);
    // erf's argument and its rational part
    const float32x4_t xs = vmulq_laneq_f32(x, k[4], 3);
    const float32x4_t a = vabsq_f32(xs);
    const float32x4_t t = vdivq_f32(one, vfmaq_laneq_f32(one, a, k[3], 1));
    float32x4_t p = vdupq_laneq_f32(k[3], 2);
    p = vfmaq_f32(vdupq_laneq_f32(k[3], 3), p, t);
    p = vfmaq_f32(vdupq_laneq_f32(k[4], 0), p, t);
    p = vfmaq_f32(vdupq_laneq_f32(k[4], 1), p, t);
    p = vfmaq_f32(vdupq_laneq_f32(k[4], 2), p, t);
    // exp(−a·a)
    float32x4_t e = vmulq_f32(vnegq_f32(a), a);
    e = vminq_f32(vmaxq_f32(e, vdupq_laneq_f32(k[0], 0)), vdupq_laneq_f32(k[0], 1));
    const float32x4_t shifter = vdupq_laneq_f32(k[0], 2);
    const float32x4_t n = vsubq_f32(vfmaq_laneq_f32(shifter, e, k[0], 3), shifter);
    float32x4_t r = vfmsq_laneq_f32(e, n, k[1], 0);
    r = vfmsq_laneq_f32(r, n, k[1], 1);
    float32x4_t q = vdupq_laneq_f32(k[1], 2);
    q = vfmaq_f32(vdupq_laneq_f32(k[1], 3), q, r);
    q = vfmaq_f32(vdupq_laneq_f32(k[2], 0), q, r);
    q = vfmaq_f32(vdupq_laneq_f32(k[2], 1), q, r);
    q = vfmaq_f32(vdupq_laneq_f32(k[2], 2), q, r);
    q = vfmaq_f32(vdupq_laneq_f32(k[2], 3), q, r);
    q = vfmaq_f32(one, q, r);
    q = vfmaq_f32(one, q, r);
    const int32x4_t ex = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    e = vmulq_f32(q, vreinterpretq_f32_s32(ex));
    const float32x4_t y = vfmsq_f32(one, vmulq_f32(p, t), e);
    const float32x4_t erf = vbslq_f32(vcltq_f32(xs, vdupq_n_f32(0.0f)), vnegq_f32(y), y);
    return vmulq_f32(vmulq_laneq_f32(x, k[2], 3), vaddq_f32(one, erf));
}

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
