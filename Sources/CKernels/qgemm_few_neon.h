#ifndef CKERNELS_QGEMM_FEW_NEON_H
#define CKERNELS_QGEMM_FEW_NEON_H
// The AArch64 sets' product for at most CKQ_FEW_NEON output columns (qgemm_few_neon.c): the classifiers of a few
// classes, where a 16-column tile would compute 12 or more columns of zeros. The sets (qgemm_6x16c4_neondot.c,
// qgemm_4x16c2_neon.c) pack B and multiply through these functions when n ≤ CKQ_FEW_NEON.
#include "qgemm_internal.h"

#if defined(__aarch64__)
#define CKQ_FEW_NEON 4

/// With the dot product: B as rows of k signed bytes (padded with zeros to 16), activations flipped to a − 128 as
/// the neondot set's tile does (its a_shift 128).
size_t ckq_few_neondot_packed_size(size_t n, size_t k);
void ckq_few_neondot_pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed);
void ckq_few_neondot_gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                          const ck_qgemm_epilogue *ep, void *c, size_t ldc);

/// Without: B as rows of k int16 (padded with zeros to 16), activations flipped to a − 128 as the neon set's tile
/// does (its a_shift 128).
size_t ckq_few_neon_packed_size(size_t n, size_t k);
void ckq_few_neon_pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed);
void ckq_few_neon_gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                       const ck_qgemm_epilogue *ep, void *c, size_t ldc);
#endif

#endif
