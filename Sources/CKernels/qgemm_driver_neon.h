// The driver of the AArch64 sets that pack A themselves (qgemm_6x16c4_neondot.c, qgemm_4x16c2_neon.c): per block of
// NB panels and MR rows, A is packed KC values of k at a time into a copy on the stack (flipped to a − 128, and for
// neon-4x16c2 spread: CKQ_A_BYTES bytes per value), and every panel of the block multiplies that copy. The sums
// start at −offset (the epilogue's acc − offset, wrapping as the products' sums do: set once per block of panels,
// it saves a subtraction per 4 outputs and the offsets' loads per tile) and wait in `sums` until k is done (KC
// bounds the copy on the stack, not k); ckq_store_tile_neon writes the tile, with the epilogue's constants made
// once per product (ckq_epi_neon_grid) and the panel's scales and biases read by two ld1 (made and loaded per
// tile, the demo MTLSegFormer's GEMMs took 468.2 M instructions per inference on cortex-a72, 467.0 M now).
//
// The including file defines MR, NR (16), NB, KC, CKQ_A_BYTES, TARGET and INLINE, includes qgemm_store_neon.h, and
// defines
//   INLINE void pack_a(size_t mvalid, size_t g0, size_t gc, const uint8_t *a, size_t lda, uint8_t *dst);
//       (groups g0 … g0 + gc − 1 of 4 k of the tile's rows; only mvalid rows are readable)
//   TARGET INLINE void product(int variant, const uint8_t *a, const int8_t *b, size_t groups,
//                              const int32_t (*from)[NR], int32_t (*sums)[NR]);
//       (sums = from + the packed groups' products for one panel; `variant` is the caller's, a constant)
// and gets gemm_loop(variant, m, n, k, a, lda, packed, ep, c, ldc), one specialised copy per output type.
// Deliberately without an include guard.

_Static_assert(NR == 16, "ckq_store_tile_neon stores 16 columns");

TARGET INLINE void gemm_output(int variant, size_t m, size_t n, size_t k, const uint8_t *a, size_t lda,
                               const int8_t *packed, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                               size_t ldc) {
    const size_t kq = ckq_round_up(k, 4) / 4, esize = output == CK_QGEMM_OUT_U8 ? 1 : 4;
    const size_t npanels = (n + NR - 1) / NR;
    uint8_t apack[MR * KC * CKQ_A_BYTES] __attribute__((aligned(16)));
    int32_t sums[NB][MR][NR] __attribute__((aligned(16)));
    int32_t start[NB][MR][NR] __attribute__((aligned(16)));
    ckq_panel_params last; // the last panel's columns, zero-padded where n ends inside it
    if (npanels) ckq_panel_params_init(&last, ep, (npanels - 1) * NR, n - (npanels - 1) * NR, NR);
    const int saturating = output == CK_QGEMM_OUT_U8 && ckq_relu_by_saturation(ep);
    const ckq_epi_neon grid = ckq_epi_neon_grid(ep);
    for (size_t pb = 0; pb < npanels; pb += NB) {
        const size_t pe = pb + NB < npanels ? pb + NB : npanels;
        for (size_t pnl = pb; pnl < pe; pnl++) {
            const int32_t *offset = n - pnl * NR < NR ? last.offset : ep->offset + pnl * NR;
            for (size_t q = 0; q < 4; q++) {
                const int32x4_t v = vnegq_s32(vld1q_s32(offset + 4 * q));
                for (size_t r = 0; r < MR; r++) vst1q_s32(start[pnl - pb][r] + 4 * q, v);
            }
        }
        for (size_t i0 = 0; i0 < m; i0 += MR) {
            const size_t mvalid = m - i0 < MR ? m - i0 : MR;
            // k = 0 still runs one product, of no groups: it copies the start into the sums.
            for (size_t g0 = 0; g0 < kq || g0 == 0; g0 += KC / 4) {
                const size_t gc = kq - g0 < KC / 4 ? kq - g0 : KC / 4;
                pack_a(mvalid, g0, gc, a + i0 * lda, lda, apack);
                for (size_t pnl = pb; pnl < pe; pnl++)
                    product(variant, apack, packed + (pnl * kq + g0) * NR * 4, gc,
                            (const int32_t(*)[NR])(g0 ? sums[pnl - pb] : start[pnl - pb]), sums[pnl - pb]);
                if (kq == 0) break;
            }
            for (size_t pnl = pb; pnl < pe; pnl++) {
                const size_t j0 = pnl * NR, nvalid = n - j0 < NR ? n - j0 : NR;
                int32_t(*ts)[NR] = sums[pnl - pb];
                const float *scale = last.scale, *bias = last.bias;
                if (nvalid == NR) scale = ep->scale + j0, bias = ep->bias ? ep->bias + j0 : ckq_zeros;
                char *ct = c + (i0 * ldc + j0) * esize;
                const size_t ldcb = ldc * esize;
                if (saturating) ckq_store_tile_neon(MR, mvalid, nvalid, ts, scale, bias, &grid, 1, 1, output, ct, ldcb);
                else if (grid.relu) ckq_store_tile_neon(MR, mvalid, nvalid, ts, scale, bias, &grid, 1, 0, output, ct, ldcb);
                else ckq_store_tile_neon(MR, mvalid, nvalid, ts, scale, bias, &grid, 0, 0, output, ct, ldcb);
            }
        }
    }
}

TARGET INLINE void gemm_loop(int variant, size_t m, size_t n, size_t k, const uint8_t *a, size_t lda,
                             const int8_t *packed, const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    switch (ep->output) {
    case CK_QGEMM_OUT_F32: gemm_output(variant, m, n, k, a, lda, packed, ep, CK_QGEMM_OUT_F32, c, ldc); break;
    case CK_QGEMM_OUT_F32_ACCUMULATE:
        gemm_output(variant, m, n, k, a, lda, packed, ep, CK_QGEMM_OUT_F32_ACCUMULATE, c, ldc);
        break;
    case CK_QGEMM_OUT_U8: gemm_output(variant, m, n, k, a, lda, packed, ep, CK_QGEMM_OUT_U8, c, ldc); break;
    }
}
