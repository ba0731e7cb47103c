// B packing shared by the sets whose inner product takes 4 int8 of k at a time
// (vpdpbusd, sdot): panels of nr columns, each column's k in groups of 4 bytes.
#include "qgemm_internal.h"

size_t ckq_packed_size_c4(size_t n, size_t k, size_t nr) {
    return ckq_round_up(n, nr) * ckq_round_up(k, 4);
}

void ckq_pack_c4(const int8_t *b, size_t n, size_t k, size_t ldb, size_t nr, int8_t *packed) {
    size_t kq = ckq_round_up(k, 4) / 4;
    for (size_t j0 = 0; j0 < n; j0 += nr) {
        for (size_t g = 0; g < kq; g++) {
            for (size_t jj = 0; jj < nr; jj++) {
                for (size_t t = 0; t < 4; t++) {
                    size_t j = j0 + jj, kk = g * 4 + t;
                    *packed++ = (j < n && kk < k) ? b[j * ldb + kk] : 0;
                }
            }
        }
    }
}
