// The exact epilogue for the AArch64 sets (qgemm_*_neon*.c). fmaxnm is maxps's twin here:
// max(v, 0) gives +0 for −0 and 0 for NaN, like the scalar definition; fcvtns rounds to nearest
// even like lrintf in the default mode.
// The product's constants (ckq_epi_neon_grid) are made once per product and the panel's scales and
// biases loaded once per tile (two ld1): read through pointers at each store they were loaded again
// for every row, since a store to C may alias them, and made again for every tile they took about a
// quarter of a tile's epilogue (see qgemm_driver_neon.h). The sums arrive as acc − offset (the
// drivers start them at −offset). Ragged stores go lane by lane: a memcpy of a variable length was a
// libc call per 4 outputs (about 640,000 calls per SegFormer-b0 inference). Included by the kernel file after
// TARGET and INLINE are defined. Deliberately without an include guard.

/// One tile's epilogue parameters, 16 columns (4 groups of 4): the product's constants, then the panel's.
typedef struct {
    float32x4_t inv, lo, hi;
    int32x4_t zp;
    uint16x8_t zp16;
    uint8x16_t zp8;
    float32x4_t scale[4], bias[4];
    int relu;
    int relu_by_saturation; // ReLU'd u8 outputs go through ckq_relu_u8x16_neon
} ckq_epi_neon;

/// Whether ReLU'd u8 outputs can take ckq_relu_u8x16_neon: a zero point of 0–255 and out_scale_inv > 0 (a grid's).
TARGET INLINE int ckq_relu_by_saturation(const ck_qgemm_epilogue *ep) {
    return ep->relu && ep->out_zero_point >= 0 && ep->out_zero_point <= 255 && ep->out_scale_inv > 0.0f;
}

/// The product's constants: everything but the columns' scales and biases.
TARGET INLINE ckq_epi_neon ckq_epi_neon_grid(const ck_qgemm_epilogue *ep) {
    ckq_epi_neon e;
    e.inv = vdupq_n_f32(ep->out_scale_inv);
    e.lo = vdupq_n_f32((float)(-ep->out_zero_point));
    e.hi = vdupq_n_f32((float)(255 - ep->out_zero_point));
    e.zp = vdupq_n_s32(ep->out_zero_point);
    e.zp16 = vdupq_n_u16((uint16_t)ep->out_zero_point);
    e.zp8 = vdupq_n_u8((uint8_t)ep->out_zero_point);
    e.relu = ep->relu;
    e.relu_by_saturation = ckq_relu_by_saturation(ep);
    for (int q = 0; q < 4; q++) e.scale[q] = e.bias[q] = vdupq_n_f32(0.0f);
    return e;
}

/// Columns 4q … 4q+3 of one row as u8 values in int32 lanes (0–255): ckq_store4_neon's arithmetic.
TARGET INLINE int32x4_t ckq_quantize4_neon(int32x4_t acc, const ckq_epi_neon *e, int q) {
    float32x4_t t = vmulq_f32(vcvtq_f32_s32(acc), e->scale[q]);
    float32x4_t v = vaddq_f32(t, e->bias[q]);
    if (e->relu) v = vmaxnmq_f32(v, vdupq_n_f32(0.0f));
    float32x4_t w = vmulq_f32(v, e->inv);
    w = vminnmq_f32(vmaxnmq_f32(w, e->lo), e->hi);
    return vaddq_s32(vcvtnq_s32_f32(w), e->zp); // round to nearest even
}

/// All 16 columns of one row into u8 where the epilogue has a ReLU (e->relu_by_saturation), the ReLU and both
/// clamps done by saturating narrows: w = v·inv rounded (fcvtns), to 0–65535 (sqxtun), + zp, to 0–255 (uqxtn).
/// With inv > 0 every v ≤ 0 (−0 included) gives w ≤ 0, which sqxtun makes 0, as ReLU's 0 does; a NaN's fcvtns is 0.
/// The bytes of ckq_quantize4_neon (clamp(round(max(v, 0)·inv) + zp, 0, 255)) in 7 instructions per 4 outputs
/// where that takes 9.
TARGET INLINE uint8x16_t ckq_relu_u8x16_neon(const int32x4_t acc[4], const ckq_epi_neon *e) {
    int32x4_t r[4];
    for (int q = 0; q < 4; q++) {
        float32x4_t t = vmulq_f32(vcvtq_f32_s32(acc[q]), e->scale[q]);
        r[q] = vcvtnq_s32_f32(vmulq_f32(vaddq_f32(t, e->bias[q]), e->inv)); // round to nearest even
    }
    const uint16x8_t lo = vqaddq_u16(vcombine_u16(vqmovun_s32(r[0]), vqmovun_s32(r[1])), e->zp16);
    const uint16x8_t hi = vqaddq_u16(vcombine_u16(vqmovun_s32(r[2]), vqmovun_s32(r[3])), e->zp16);
    return vcombine_u8(vqmovn_u16(lo), vqmovn_u16(hi));
}

/// All 16 columns of one row into floats (written, or added to what is there): ckq_store4_neon's
/// arithmetic without its checks of `valid`.
TARGET INLINE void ckq_store16_f32_neon(const int32x4_t acc[4], const ckq_epi_neon *e, int accumulate, float *c) {
    for (int q = 0; q < 4; q++) {
        float32x4_t t = vmulq_f32(vcvtq_f32_s32(acc[q]), e->scale[q]);
        float32x4_t v = vaddq_f32(t, e->bias[q]);
        if (e->relu) v = vmaxnmq_f32(v, vdupq_n_f32(0.0f));
        if (accumulate) v = vaddq_f32(vld1q_f32(c + 4 * q), v);
        vst1q_f32(c + 4 * q, v);
    }
}

/// Columns 4q … 4q+3 of one row; stores the first `valid` (0–4).
TARGET INLINE void ckq_store4_neon(int32x4_t acc, const ckq_epi_neon *e, int q, ck_qgemm_output output, void *c,
                                   size_t valid) {
    if (valid == 0) return;
    if (output == CK_QGEMM_OUT_U8) {
        int32x4_t qv = ckq_quantize4_neon(acc, e, q);
        uint8x8_t bytes = vmovn_u16(vcombine_u16(vmovn_u32(vreinterpretq_u32_s32(qv)), vdup_n_u16(0)));
        uint8_t *cb = c;
        if (valid == 4) {
            vst1_lane_u32((void *)cb, vreinterpret_u32_u8(bytes), 0); // st1 {v.s}[0]: any alignment
        } else {
            vst1_lane_u8(cb, bytes, 0);
            if (valid > 1) vst1_lane_u8(cb + 1, bytes, 1);
            if (valid > 2) vst1_lane_u8(cb + 2, bytes, 2);
        }
        return;
    }
    float32x4_t t = vmulq_f32(vcvtq_f32_s32(acc), e->scale[q]);
    float32x4_t v = vaddq_f32(t, e->bias[q]);
    if (e->relu) v = vmaxnmq_f32(v, vdupq_n_f32(0.0f));
    float *cf = c;
    if (valid == 4) {
        if (output == CK_QGEMM_OUT_F32_ACCUMULATE) v = vaddq_f32(vld1q_f32(cf), v);
        vst1q_f32(cf, v);
    } else {
        const int acc_out = output == CK_QGEMM_OUT_F32_ACCUMULATE;
        cf[0] = acc_out ? cf[0] + vgetq_lane_f32(v, 0) : vgetq_lane_f32(v, 0);
        if (valid > 1) cf[1] = acc_out ? cf[1] + vgetq_lane_f32(v, 1) : vgetq_lane_f32(v, 1);
        if (valid > 2) cf[2] = acc_out ? cf[2] + vgetq_lane_f32(v, 2) : vgetq_lane_f32(v, 2);
    }
}

/// All 16 columns of one row into u8: ckq_quantize4_neon's bytes with the zero point added after the narrowing: the
/// clamped and rounded values lie in [−zp, 255 − zp], so their low bytes plus zp, modulo 256, are the outputs (one
/// add of 16 bytes instead of four of 4 lanes before the narrowing).
TARGET INLINE void ckq_store16_u8_zp_after_neon(const int32x4_t acc[4], const ckq_epi_neon *e, uint8_t *c) {
    uint16x8_t half[2];
    for (int h = 0; h < 2; h++) {
        int32x4_t r[2];
        for (int i = 0; i < 2; i++) {
            const int q = 2 * h + i;
            float32x4_t t = vmulq_f32(vcvtq_f32_s32(acc[q]), e->scale[q]);
            float32x4_t v = vaddq_f32(t, e->bias[q]);
            if (e->relu) v = vmaxnmq_f32(v, vdupq_n_f32(0.0f));
            float32x4_t w = vmulq_f32(v, e->inv);
            w = vminnmq_f32(vmaxnmq_f32(w, e->lo), e->hi);
            r[i] = vcvtnq_s32_f32(w); // round to nearest even
        }
        half[h] = vuzp1q_u16(vreinterpretq_u16_s32(r[0]), vreinterpretq_u16_s32(r[1]));
    }
    vst1q_u8(c, vaddq_u8(vuzp1q_u8(vreinterpretq_u8_u16(half[0]), vreinterpretq_u8_u16(half[1])), e->zp8));
}

/// One row's 16 outputs, as `output` (and by_saturation, constants at each call) say.
TARGET INLINE void ckq_store16_row_neon(const int32x4_t acc[4], const ckq_epi_neon *e, int by_saturation,
                                        ck_qgemm_output output, char *c) {
    if (output == CK_QGEMM_OUT_U8 && by_saturation) vst1q_u8((uint8_t *)c, ckq_relu_u8x16_neon(acc, e));
    else if (output == CK_QGEMM_OUT_U8) ckq_store16_u8_zp_after_neon(acc, e, (uint8_t *)c);
    else ckq_store16_f32_neon(acc, e, output == CK_QGEMM_OUT_F32_ACCUMULATE, (float *)c);
}

/// The outputs of a tile of mr rows × 16 columns from its sums, which started at −offset (the epilogue's
/// acc − offset is done): `grid` the product's constants (ckq_epi_neon_grid), `scale` and `bias` the panel's 16
/// columns (zeros past n). `relu` is a constant at each call (ep->relu, tested once per tile): read from the
/// epilogue at every group of 4 outputs it cost a test and branch there. So is `by_saturation`
/// (ckq_relu_by_saturation: whole rows of u8 outputs take ckq_relu_u8x16_neon).
TARGET INLINE void ckq_store_tile_neon(size_t mr, size_t mvalid, size_t nvalid, int32_t (*sums)[16], const float *scale,
                                       const float *bias, const ckq_epi_neon *grid, int relu, int by_saturation,
                                       ck_qgemm_output output, char *c, size_t ldc_bytes) {
    const size_t esize = output == CK_QGEMM_OUT_U8 ? 1 : 4;
    ckq_epi_neon e = *grid;
    e.relu = relu;
    const float32x4x4_t s = vld1q_f32_x4(scale), b = vld1q_f32_x4(bias);
    for (int q = 0; q < 4; q++) e.scale[q] = s.val[q], e.bias[q] = b.val[q];
    if (mvalid == mr && nvalid >= 16) { // a whole tile: its rows unrolled, without the checks of each row
#pragma clang loop unroll(full)
        for (size_t r = 0; r < mr; r++) {
            const int32x4x4_t row = vld1q_s32_x4(sums[r]); // one ld1 of 4 registers
            const int32x4_t acc[4] = {row.val[0], row.val[1], row.val[2], row.val[3]};
            ckq_store16_row_neon(acc, &e, by_saturation, output, c + r * ldc_bytes);
        }
        return;
    }
    for (size_t r = 0; r < mvalid; r++) {
        const int32x4x4_t row = vld1q_s32_x4(sums[r]);
        const int32x4_t acc[4] = {row.val[0], row.val[1], row.val[2], row.val[3]};
        char *cr = c + r * ldc_bytes;
        if (nvalid >= 16) {
            ckq_store16_row_neon(acc, &e, by_saturation, output, cr);
            continue;
        }
        for (int q = 0; q < 4; q++) {
            size_t valid = nvalid > 4 * (size_t)q ? (nvalid - 4 * q < 4 ? nvalid - 4 * q : 4) : 0;
            ckq_store4_neon(acc[q], &e, q, output, cr + 4 * q * esize, valid);
        }
    }
}
