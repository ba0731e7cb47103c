// The loop that walks a quantized GEMM in cache blocks of NB packed panels and MR-row tiles, and the
// switch that turns the epilogue's output type into a constant. Every SIMD set includes this after
// its own `tile`, so that the driver compiles under that set's TARGET and inlines its tile: one
// specialised copy per output type, with no branch on the output inside the k loop.
//
// The including file defines: MR, NR, NB; TARGET and INLINE; CKQ_PACKED_T (the packed B element);
//   TARGET INLINE void tile(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda,
//                           const CKQ_PACKED_T *bp, const ckq_panel_params *p, const ck_qgemm_epilogue *ep,
//                           ck_qgemm_output output, char *c, size_t ldc_bytes);
// and gets `gemm`, the ck_qgemm_kernels.gemm entry. Deliberately without an include guard.

TARGET INLINE void gemm_output(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda,
                               const CKQ_PACKED_T *packed, const ck_qgemm_epilogue *ep, ck_qgemm_output output,
                               char *c, size_t ldc) {
    size_t kq = ckq_round_up(k, 4) / 4, esize = output == CK_QGEMM_OUT_U8 ? 1 : 4;
    size_t npanels = (n + NR - 1) / NR;
    // The last panel's zero-padded parameters are made once, not once per row tile (their
    // memset and memcpy were libc calls in the inner loop).
    ckq_panel_params params, last;
    if (npanels) ckq_panel_params_init(&last, ep, (npanels - 1) * NR, n - (npanels - 1) * NR, NR);
    for (size_t pb = 0; pb < npanels; pb += NB) {
        size_t pe = pb + NB < npanels ? pb + NB : npanels;
        for (size_t i0 = 0; i0 < m; i0 += MR) {
            size_t mvalid = m - i0 < MR ? m - i0 : MR;
            for (size_t pnl = pb; pnl < pe; pnl++) {
                size_t j0 = pnl * NR, nvalid = n - j0 < NR ? n - j0 : NR;
                const ckq_panel_params *pp = &last;
                if (nvalid == NR) {
                    ckq_panel_params_init(&params, ep, j0, NR, NR); // pointers only
                    pp = &params;
                }
                tile(mvalid, nvalid, kq, a + i0 * lda, lda, packed + pnl * kq * NR * 4, pp, ep, output,
                     c + (i0 * ldc + j0) * esize, ldc * esize);
            }
        }
    }
}

TARGET static void gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                        const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    switch (ep->output) {
    case CK_QGEMM_OUT_F32: gemm_output(m, n, k, a, lda, packed_b, ep, CK_QGEMM_OUT_F32, c, ldc); break;
    case CK_QGEMM_OUT_F32_ACCUMULATE:
        gemm_output(m, n, k, a, lda, packed_b, ep, CK_QGEMM_OUT_F32_ACCUMULATE, c, ldc);
        break;
    case CK_QGEMM_OUT_U8: gemm_output(m, n, k, a, lda, packed_b, ep, CK_QGEMM_OUT_U8, c, ldc); break;
    }
}
