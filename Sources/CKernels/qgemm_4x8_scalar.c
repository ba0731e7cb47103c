// Portable int8 GEMM for any CPU: a 4×8 tile of int32 sums in plain C, which the
// compiler vectorises with whatever baseline SIMD the target has (SSE2, NEON).
#include "qgemm_internal.h"

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

enum { MR = 4, NR = 8 };

// Layout: panels of NR columns, k-major inside: byte (panel, kk, jj) = B[panel·NR + jj][kk].
static size_t packed_size(size_t n, size_t k) { return ckq_round_up(n, NR) * k; }

static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    int8_t *out = packed;
    for (size_t j0 = 0; j0 < n; j0 += NR)
        for (size_t kk = 0; kk < k; kk++)
            for (size_t jj = 0; jj < NR; jj++) *out++ = j0 + jj < n ? b[(j0 + jj) * ldb + kk] : 0;
}

static void gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                 const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    const int8_t *bp0 = packed_b;
    ckq_panel_params params;
    for (size_t j0 = 0; j0 < n; j0 += NR) {
        size_t nvalid = n - j0 < NR ? n - j0 : NR;
        const int8_t *bp = bp0 + (j0 / NR) * NR * k;
        ckq_panel_params_init(&params, ep, j0, nvalid, NR);
        for (size_t i0 = 0; i0 < m; i0 += MR) {
            size_t mvalid = m - i0 < MR ? m - i0 : MR;
            // Ragged m: the missing rows repeat the last real one (only m rows are readable).
            const uint8_t *ar[MR];
            for (size_t r = 0; r < MR; r++) ar[r] = a + (i0 + (r < mvalid ? r : mvalid - 1)) * lda;
            int32_t acc[MR][NR] = {{0}};
            for (size_t kk = 0; kk < k; kk++) {
                const int8_t *bk = bp + kk * NR;
                for (size_t r = 0; r < MR; r++) {
                    int32_t av = ar[r][kk];
                    for (size_t jj = 0; jj < NR; jj++) acc[r][jj] += av * bk[jj];
                }
            }
            for (size_t r = 0; r < mvalid; r++)
                for (size_t jj = 0; jj < nvalid; jj++)
                    ckq_store(ep, c, ldc, i0 + r, j0 + jj,
                              ckq_value(acc[r][jj], params.offset[jj], params.scale[jj], params.bias[jj], ep->relu));
        }
    }
}

const ck_qgemm_kernels ckq_scalar_4x8 = {
    .name = "scalar-4x8",
    .isa = "scalar",
    .mr = MR,
    .nr = NR,
    .k_group = 1,
    .a_shift = 0,
    .packed_size = packed_size,
    .pack = pack,
    .gemm = gemm,
};
