// The gated cross-task input of an MTLSegFormer combine conv (see ck_gate_concat_u8 in ckernels_q8.h).
// The portable version, and the definition every other version reproduces bit for bit: each float
// operation below is one rounding, in this order, none fused into a multiply-add.
// (The pragmas come first: they must cover ck_math.h's exp too.)
#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#include "ck_math.h"
#include "ckernels_q8.h"
#include "ops_dispatch.h"

/// Adds x[i]·w[i] of i < n into lanes: lane l takes the products of the i ≡ l (mod CK_GATE_DOT_LANES), in
/// increasing i. (Lane-parallel, the tail as a whole block adding +0 past n, which changes no lane: a lane
/// that starts at +0 is never −0. So the lanes stay in vector registers.)
static inline void add_products(float *lanes, const float *x, const float *w, size_t n) {
    size_t i = 0;
    for (; i + CK_GATE_DOT_LANES <= n; i += CK_GATE_DOT_LANES)
        for (size_t l = 0; l < CK_GATE_DOT_LANES; l++) lanes[l] = lanes[l] + x[i + l] * w[i + l];
    if (i < n)
        for (size_t l = 0; l < CK_GATE_DOT_LANES; l++) lanes[l] = lanes[l] + (i + l < n ? x[i + l] * w[i + l] : 0.0f);
}

/// The lanes summed: halves added, lane l + lane l + half, until one lane is left.
static inline float sum_lanes(float *lanes) {
    for (size_t half = CK_GATE_DOT_LANES / 2; half > 0; half /= 2)
        for (size_t l = 0; l < half; l++) lanes[l] = lanes[l] + lanes[l + half];
    return lanes[0];
}

CK_VECTOR_CLONES
void ck_gate_concat_u8_portable(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                                size_t gates, const float *const *self_weights, const float *const *other_weights,
                                const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                                float *scratch) {
    float *a = scratch; // one pixel's gate values at a time
    for (size_t p = 0; p < pixels; p++) {
        const float *f = own + p * ld;
        uint8_t *q = out + p * ldo;
        for (size_t g = 0; g < gates; g++) {
            float lanes[CK_GATE_DOT_LANES] = {0};
            add_products(lanes, f, self_weights[g], channels);
            add_products(lanes, others[g] + p * ld, other_weights[g], channels);
            a[g] = 1.0f / (1.0f + ck_expf(-(sum_lanes(lanes) + bias[g])));
        }
        for (size_t c = 0; c < channels; c++) q[c] = ck_quantize_u8(f[c], inv_scale, zero_point);
        // G in blocks of 16 channels, gate after gate (so that the loops vectorise). The first product is not
        // added to +0: that would only turn −0 into +0, which quantize alike.
        for (size_t c0 = 0; c0 < channels; c0 += 16) {
            const size_t n = channels - c0 < 16 ? channels - c0 : 16;
            float cross[16];
            for (size_t l = 0; l < n; l++) cross[l] = a[0] * others[0][p * ld + c0 + l];
            for (size_t g = 1; g < gates; g++)
                for (size_t l = 0; l < n; l++) cross[l] = cross[l] + a[g] * others[g][p * ld + c0 + l];
            for (size_t l = 0; l < n; l++) q[channels + c0 + l] = ck_quantize_u8(cross[l], inv_scale, zero_point);
        }
    }
}
