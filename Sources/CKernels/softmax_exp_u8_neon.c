// AArch64 NEON version of the attention's softmax numerator (see ck_softmax_exp_u8 in
// ckernels_attention_q8.h); chosen by ops_dispatch.c.
//
// Bit for bit the portable version: the row's maximum is exact in any order (fmax, and the sign
// of a zero maximum cannot change s − max's exp); the exp is attention_q8.c's attention_expf
// step for step (its n = round_even(x·log2e) is a product passed to a function, so not fused,
// and its rounding by adding and subtracting 1.5·2²³ is one frintn here;
// the Cody-Waite and Horner steps are fused multiply-adds, as clang contracts them for
// AArch64); the bytes are round_even(e·255) and their sum is an exact int32.
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include <arm_neon.h>
#include <math.h>

/// attention_expf. Its round_even, (v + 1.5·2²³) − 1.5·2²³, is frintn here (round to nearest even in one
/// instruction: the same for |v| < 2²², and x·log2e lies in [−126, 0] or is NaN).
static inline float32x4_t attention_expf_neon(float32x4_t x) {
    x = vmaxq_f32(x, vdupq_n_f32(-87.0f));
    const float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693145751953125f));
    r = vfmsq_f32(r, n, vdupq_n_f32(1.428606765330187045e-06f));
    float32x4_t p = vdupq_n_f32(1.0f / 720.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    // 2ⁿ's bits, (n + 127) << 23, in two instructions instead of three (convert, add, shift): n + 1.5·2²³ + 127 is
    // exact (n is an integer in [−126, 0]) and holds n + 127 in its low mantissa bits, which the shift moves into the
    // exponent while the rest leaves the word. (A NaN n gives 0 here and 1.0 there: p is NaN too, so is the product.)
    const int32x4_t e = vshlq_n_s32(vreinterpretq_s32_f32(vaddq_f32(n, vdupq_n_f32(12583039.0f))), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

/// round_even(exp(s − max)·255) as int32 lanes (0–255): fcvtns rounds to nearest even and converts in one
/// instruction (the portable round_even and conversion give the same for these values, 0–255, and 0 for NaN).
static inline int32x4_t exp_byte(float32x4_t s, float32x4_t max) {
    const float32x4_t v = vmulq_f32(attention_expf_neon(vsubq_f32(s, max)), vdupq_n_f32(255.0f));
    return vcvtnq_s32_f32(v);
}

void ck_softmax_exp_u8_neon(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                            float *inv_sums) {
    for (size_t r = 0; r < rows; r++) {
        const float *s = scores + r * lds;
        uint8_t *q = out + r * ldo;
        float32x4_t m0 = vdupq_n_f32(-INFINITY), m1 = m0;
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            m0 = vmaxq_f32(m0, vld1q_f32(s + c));
            m1 = vmaxq_f32(m1, vld1q_f32(s + c + 4));
        }
        float max = vmaxvq_f32(vmaxq_f32(m0, m1));
        for (; c < cols; c++) max = s[c] > max ? s[c] : max;
        const float32x4_t vmax = vdupq_n_f32(max);
        int32x4_t sum = vdupq_n_s32(0);
        for (c = 0; c + 16 <= cols; c += 16) {
            const int32x4_t a = exp_byte(vld1q_f32(s + c), vmax), b = exp_byte(vld1q_f32(s + c + 4), vmax);
            const int32x4_t d = exp_byte(vld1q_f32(s + c + 8), vmax), e = exp_byte(vld1q_f32(s + c + 12), vmax);
            sum = vaddq_s32(vaddq_s32(sum, vaddq_s32(a, b)), vaddq_s32(d, e));
            const uint16x8_t lo = vcombine_u16(vqmovun_s32(a), vqmovun_s32(b)), hi = vcombine_u16(vqmovun_s32(d), vqmovun_s32(e));
            vst1q_u8(q + c, vcombine_u8(vmovn_u16(lo), vmovn_u16(hi)));
        }
        int32_t total = vaddvq_s32(sum);
        for (; c < cols; c += 4) { // the last 1–15 columns, 4 at a time through a padded copy
            float t[4] = {max, max, max, max};
            const size_t n = cols - c < 4 ? cols - c : 4;
            for (size_t i = 0; i < n; i++) t[i] = s[c + i];
            int32_t v[4];
            vst1q_s32(v, exp_byte(vld1q_f32(t), vmax));
            for (size_t i = 0; i < n; i++) {
                q[c + i] = (uint8_t)v[i];
                total += v[i];
            }
        }
        inv_sums[r] = 1.0f / (float)total; // the maximum writes 255, so total ≥ 255
    }
}
#endif
