#ifndef CKERNELS_QGEMM_INTERNAL_H
#define CKERNELS_QGEMM_INTERNAL_H
// Shared by the qgemm kernel sets: the exact scalar epilogue (the definition every
// ISA reproduces), the per-panel epilogue parameters, and the kernel-set symbols.
// Every file including this must also say `#pragma STDC FP_CONTRACT OFF`:
// a fused multiply-add would skip the rounding of t and break bitwise equality.
#include "ck_math.h"
#include "ckernels_qgemm.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

/// Widest nr of any set; sizes the padded parameter copies of a ragged panel.
#define CKQ_MAX_NR 64

static inline size_t ckq_round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

static inline uint32_t ckq_load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v); // unaligned: A rows have any stride
    return v;
}

/// t = (acc − offset)·scale, v = t + bias, ReLU. The subtraction wraps like the
/// SIMD lanes do (no signed-overflow UB); `v > 0 ? v : 0` is exactly x86 maxps(v, 0)
/// and NEON fmaxnm(v, 0), including −0 → +0.
static inline float ckq_value(int32_t acc, int32_t offset, float scale, float bias, int relu) {
    float t = (float)(int32_t)((uint32_t)acc - (uint32_t)offset) * scale;
    float v = t + bias;
    if (relu) v = v > 0.0f ? v : 0.0f;
    return v;
}

/// clamp(round_even(v·inv) + zp, 0, 255), computed as round_even(clamp(v·inv, −zp, 255 − zp)) + zp
/// (equal, because the bounds are integers) so that the float never overflows the
/// int conversion. The comparisons mirror maxps/minps operand order. ck_round_even is lrintf's
/// default rounding inline (|w| ≤ 255): lrintf was a call through the PLT per output.
static inline uint8_t ckq_to_u8(float v, float inv, int32_t zp) {
    float w = v * inv;
    float lo = (float)(-zp), hi = (float)(255 - zp);
    w = w > lo ? w : lo;
    w = w < hi ? w : hi;
    return (uint8_t)((int32_t)ck_round_even(w) + zp);
}

/// Stores one value the way the epilogue's output says.
static inline void ckq_store(const ck_qgemm_epilogue *ep, void *c, size_t ldc, size_t i, size_t j, float v) {
    switch (ep->output) {
    case CK_QGEMM_OUT_F32: ((float *)c)[i * ldc + j] = v; break;
    case CK_QGEMM_OUT_F32_ACCUMULATE: ((float *)c)[i * ldc + j] += v; break;
    case CK_QGEMM_OUT_U8: ((uint8_t *)c)[i * ldc + j] = ckq_to_u8(v, ep->out_scale_inv, ep->out_zero_point); break;
    }
}

extern const float ckq_zeros[CKQ_MAX_NR];

/// Epilogue parameters of one nr-wide panel, always readable for nr lanes: the
/// caller's arrays hold only n entries, so a ragged last panel (or a NULL bias)
/// reads from zero-padded copies instead.
typedef struct {
    const int32_t *offset;
    const float *scale;
    const float *bias;
    int32_t offset_buf[CKQ_MAX_NR];
    float scale_buf[CKQ_MAX_NR];
    float bias_buf[CKQ_MAX_NR];
} ckq_panel_params;

static inline void ckq_panel_params_init(ckq_panel_params *p, const ck_qgemm_epilogue *ep, size_t j0, size_t nvalid,
                                         size_t nr) {
    if (nvalid == nr) {
        p->offset = ep->offset + j0;
        p->scale = ep->scale + j0;
        p->bias = ep->bias ? ep->bias + j0 : ckq_zeros;
        return;
    }
    memset(p->offset_buf, 0, sizeof p->offset_buf);
    memset(p->scale_buf, 0, sizeof p->scale_buf);
    memset(p->bias_buf, 0, sizeof p->bias_buf);
    memcpy(p->offset_buf, ep->offset + j0, nvalid * sizeof(int32_t));
    memcpy(p->scale_buf, ep->scale + j0, nvalid * sizeof(float));
    if (ep->bias) memcpy(p->bias_buf, ep->bias + j0, nvalid * sizeof(float));
    p->offset = p->offset_buf;
    p->scale = p->scale_buf;
    p->bias = p->bias_buf;
}

/// Packs B[n][k] into nr-column panels of k_group-byte column groups, the layout of
/// the int8 "c4" sets: byte (panel, g, jj, t) = B[panel·nr + jj][g·4 + t], zero
/// outside B (so ragged n and k contribute nothing).
void ckq_pack_c4(const int8_t *b, size_t n, size_t k, size_t ldb, size_t nr, int8_t *packed);
size_t ckq_packed_size_c4(size_t n, size_t k, size_t nr);

// The kernel sets (one file each). Those of the other architecture are not built.
#if defined(__x86_64__)
extern const ck_qgemm_kernels ckq_avx512vnni_8x32c4;
extern const ck_qgemm_kernels ckq_avxvnni_4x16c4;
extern const ck_qgemm_kernels ckq_avx2_4x16c2;
#endif
#if defined(__aarch64__)
extern const ck_qgemm_kernels ckq_neondot_6x16c4;
extern const ck_qgemm_kernels ckq_neon_4x16c2;
#endif
extern const ck_qgemm_kernels ckq_scalar_4x8;

#endif
