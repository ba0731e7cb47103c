// The CPU probe and the one reading of MTLSEG_KERNELS (see cpu_features.h).
#include "cpu_features.h"
#include "ckernels_cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20) // older kernel headers lack it
#endif
#ifndef HWCAP_SVE
#define HWCAP_SVE (1UL << 22)
#endif
#ifndef HWCAP2_SME
#define HWCAP2_SME (1UL << 23)
#endif
#endif

static const char *const tier_names[CK_TIER_COUNT] = {
    [CK_TIER_AVX512VNNI] = "avx512vnni", [CK_TIER_AVXVNNI] = "avxvnni", [CK_TIER_AVX2] = "avx2",
    [CK_TIER_NEONDOT] = "neondot",       [CK_TIER_SCALAR] = "scalar",
    [CK_TIER_NEON] = "neon",
};

const char *ck_tier_name(ck_tier tier) { return tier < CK_TIER_COUNT ? tier_names[tier] : "?"; }

/// Per tier of this architecture, best first: the widest operation versions it allows.
typedef struct {
    ck_tier tier;
    ck_vectors vectors;
} tier_limit;

static const tier_limit tiers[] = {
#if defined(__x86_64__)
    {CK_TIER_AVX512VNNI, CK_VECTORS_AVX512},
    {CK_TIER_AVXVNNI, CK_VECTORS_AVX2},
    {CK_TIER_AVX2, CK_VECTORS_AVX2},
#endif
#if defined(__aarch64__)
    {CK_TIER_NEONDOT, CK_VECTORS_NEON},
    {CK_TIER_NEON, CK_VECTORS_NEON},
#endif
    {CK_TIER_SCALAR, CK_VECTORS_PORTABLE},
};
enum { tier_count = sizeof tiers / sizeof tiers[0] };

static ck_cpu_features features;

/// What the CPU runs. __builtin_cpu_supports also checks that the OS saves the zmm/ymm state (XCR0).
static void probe(void) {
    features.runs[CK_TIER_SCALAR] = 1;
    features.vectors = CK_VECTORS_PORTABLE;
#if defined(__x86_64__)
    __builtin_cpu_init(); // may run before the constructor that normally does this
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    features.avx512f = __builtin_cpu_supports("avx512f") ? 1 : 0;
    features.runs[CK_TIER_AVX512VNNI] = avx512 && __builtin_cpu_supports("avx512vnni");
    features.runs[CK_TIER_AVXVNNI] = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
    features.runs[CK_TIER_AVX2] = __builtin_cpu_supports("avx2");
    if (avx512 && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        features.vectors = CK_VECTORS_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        features.vectors = CK_VECTORS_AVX2;
#elif defined(__aarch64__) && defined(__linux__)
    features.runs[CK_TIER_NEONDOT] = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
    features.sve = (getauxval(AT_HWCAP) & HWCAP_SVE) != 0;
    features.sme = (getauxval(AT_HWCAP2) & HWCAP2_SME) != 0;
#endif
#if defined(__aarch64__)
    features.runs[CK_TIER_NEON] = 1; // Advanced SIMD is part of every AArch64 CPU
    features.vectors = CK_VECTORS_NEON;
#endif
}

/// MTLSEG_KERNELS=<tier> caps the GEMMs at the best tier the CPU runs at or below it, and the
/// other operations at its vector width: "scalar" runs the portable C everywhere. A name this
/// architecture lacks is ignored, with a message.
static void apply_cap(void) {
    size_t start = 0;
    int capped = 0;
    const char *cap = getenv("MTLSEG_KERNELS");
    if (cap && *cap) {
        size_t t = 0;
        while (t < tier_count && strcmp(tier_names[tiers[t].tier], cap) != 0) t++;
        if (t == tier_count) {
            fprintf(stderr, "mtlseg: MTLSEG_KERNELS=%s is not a kernel set of this architecture (", cap);
            for (size_t u = 0; u < tier_count; u++) fprintf(stderr, "%s%s", u ? ", " : "", tier_names[tiers[u].tier]);
            fprintf(stderr, "); ignored\n");
        } else {
            start = t;
            capped = 1;
            if (tiers[t].vectors < features.vectors) features.vectors = tiers[t].vectors;
        }
    }
    size_t t = start;
    while (!features.runs[tiers[t].tier]) t++; // ends at scalar, which always runs
    if (capped && t != start)
        fprintf(stderr, "mtlseg: this CPU does not run MTLSEG_KERNELS=%s; the GEMMs run %s\n", cap,
                tier_names[tiers[t].tier]);
    features.gemm = tiers[t].tier;
}

static void resolve_once(void) {
    probe();
    apply_cap();
}

const ck_cpu_features *ck_cpu_features_get(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, resolve_once);
    return &features;
}

int ck_cpu_has_avx512f(void) { return ck_cpu_features_get()->avx512f; }
int ck_cpu_has_sve(void) { return ck_cpu_features_get()->sve; }
int ck_cpu_has_sme(void) { return ck_cpu_features_get()->sme; }
