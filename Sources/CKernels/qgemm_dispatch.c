// The qgemm kernel set of each tier; cpu_features.c says which tier runs.
#include "cpu_features.h"
#include "qgemm_internal.h"

static const ck_qgemm_kernels *const sets[CK_TIER_COUNT] = {
#if defined(__x86_64__)
    [CK_TIER_AVX512VNNI] = &ckq_avx512vnni_8x32c4,
    [CK_TIER_AVXVNNI] = &ckq_avxvnni_4x16c4,
    [CK_TIER_AVX2] = &ckq_avx2_4x16c2,
#endif
#if defined(__aarch64__)
    [CK_TIER_NEONDOT] = &ckq_neondot_6x16c4,
    [CK_TIER_NEON] = &ckq_neon_4x16c2,
#endif
    [CK_TIER_SCALAR] = &ckq_scalar_4x8,
};

size_t ck_qgemm_available(const ck_qgemm_kernels **available, size_t capacity) {
    const ck_cpu_features *cpu = ck_cpu_features_get();
    size_t count = 0;
    for (size_t t = 0; t < CK_TIER_COUNT && count < capacity; t++)
        if (sets[t] && cpu->runs[t]) available[count++] = sets[t];
    return count;
}

const ck_qgemm_kernels *ck_qgemm_select(void) { return sets[ck_cpu_features_get()->gemm]; }
