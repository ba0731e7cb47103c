// Picks the qgemm kernel set once, from the CPU's features, capped by MTLSEG_KERNELS.
#include "qgemm_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) // older kernel headers lack it
#endif
#endif

typedef struct {
    const ck_qgemm_kernels *set;
    int (*supported)(void);
} tier;

#if defined(__x86_64__)
// __builtin_cpu_supports also checks that the OS saves the zmm/ymm state (XCR0).
static int has_avx512vnni(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}
static int has_avxvnni(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni"); }
static int has_avx2(void) { return __builtin_cpu_supports("avx2"); }
#endif
#if defined(__aarch64__)
static int has_neondot(void) {
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return 0;
#endif
}
#endif
static int always(void) { return 1; }

// Best first; MTLSEG_KERNELS=<isa> starts the search at that tier.
static const tier tiers[] = {
#if defined(__x86_64__)
    {&ckq_avx512vnni_8x32c4, has_avx512vnni},
    {&ckq_avxvnni_4x16c4, has_avxvnni},
    {&ckq_avx2_4x16c2, has_avx2},
#endif
#if defined(__aarch64__)
    {&ckq_neondot_4x16c4, has_neondot},
#endif
    {&ckq_scalar_4x8, always},
};
enum { tier_count = sizeof tiers / sizeof tiers[0] };

size_t ck_qgemm_available(const ck_qgemm_kernels **sets, size_t capacity) {
#if defined(__x86_64__)
    __builtin_cpu_init(); // may run before the constructor that normally does this
#endif
    size_t count = 0;
    for (size_t t = 0; t < tier_count && count < capacity; t++)
        if (tiers[t].supported()) sets[count++] = tiers[t].set;
    return count;
}

static const ck_qgemm_kernels *selected;

static void select_once(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
#endif
    size_t start = 0;
    const char *cap = getenv("MTLSEG_KERNELS");
    if (cap && *cap) {
        size_t t = 0;
        while (t < tier_count && strcmp(tiers[t].set->isa, cap) != 0) t++;
        if (t == tier_count) {
            fprintf(stderr, "mtlseg: MTLSEG_KERNELS=%s is not a kernel set of this architecture (", cap);
            for (size_t u = 0; u < tier_count; u++) fprintf(stderr, "%s%s", u ? ", " : "", tiers[u].set->isa);
            fprintf(stderr, "); ignored\n");
        } else if (!tiers[t].supported()) {
            fprintf(stderr, "mtlseg: MTLSEG_KERNELS=%s is not supported by this CPU; ignored\n", cap);
        } else {
            start = t;
        }
    }
    for (size_t t = start; t < tier_count; t++) {
        if (tiers[t].supported()) {
            selected = tiers[t].set;
            return;
        }
    }
}

const ck_qgemm_kernels *ck_qgemm_select(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, select_once);
    return selected;
}
