// AArch64 NEON version of the classifier's per-pixel class and class counts (see
// ck_argmax_count_f32 in ckernels_fp32.h); chosen by ops_dispatch.c.
//
// The same classes as the portable version, which keeps the first value strictly larger than
// everything before it, starting from −∞: so the winner is the first class holding the largest
// value that is not NaN, and class 0 where no value beats −∞ (all NaN or −∞). Here the largest
// value comes from a tree of maxNum (fmaxnm: NaN loses to any number; it returns one of its
// inputs, so the value is in the row), then the first class equal to it is found 4 at a time
// (−0 and +0 are equal for both versions' comparisons, so the first of them wins in both).
#include "ops_dispatch.h"

#if defined(CK_HAVE_NEON_KERNELS)
#include <arm_neon.h>
#include <math.h>

void ck_argmax_count_f32_neon(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask, uint32_t *counts) {
    for (size_t p = 0; p < pixels; p++) {
        const float *x = in + p * ldi;
        float best = -INFINITY;
        size_t c = 0;
        if (classes >= 4) {
            float32x4_t m = vld1q_f32(x);
            for (c = 4; c + 4 <= classes; c += 4) m = vmaxnmq_f32(m, vld1q_f32(x + c));
            best = vmaxnmvq_f32(m);
        }
        for (; c < classes; c++) best = fmaxf(best, x[c]); // fmaxnm
        size_t winner = 0;
        if (best > -INFINITY) { // not NaN, not −∞: some class holds it
            const float32x4_t b = vdupq_n_f32(best);
            c = 0;
            for (; c + 4 <= classes; c += 4) {
                const uint16x4_t eq = vmovn_u32(vceqq_f32(vld1q_f32(x + c), b));
                const uint64_t bits = vget_lane_u64(vreinterpret_u64_u16(eq), 0);
                if (bits) {
                    c += (size_t)__builtin_ctzll(bits) / 16;
                    goto found;
                }
            }
            while (x[c] != best) c++;
        found:
            winner = c;
        }
        mask[p] = (uint8_t)winner;
        counts[winner]++;
    }
}
#endif
