// The exact scalar definition of ck_qgemm: every kernel set must equal it bit for bit.
#include "qgemm_internal.h"

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

const float ckq_zeros[CKQ_MAX_NR];

void ck_qgemm_reference(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *b, size_t ldb,
                        const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            int32_t acc = 0; // exact: |Σ| ≤ k·255·128 < 2³¹ for any k a model uses
            for (size_t kk = 0; kk < k; kk++) acc += (int32_t)a[i * lda + kk] * (int32_t)b[j * ldb + kk];
            float v = ckq_value(acc, ep->offset[j], ep->scale[j], ep->bias ? ep->bias[j] : 0.0f, ep->relu);
            ckq_store(ep, c, ldc, i, j, v);
        }
    }
}
