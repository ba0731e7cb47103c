// How many 8-bit multiply-adds one core can issue per second at most: the widest dot-product instruction the CPU
// runs (see ck_dot_ceiling_gmacs in ckernels_cpu.h), the yardstick `mtlseg bench` and qgemm_bench hold the
// int8 products against.
#include "ckernels_cpu.h"
#include "cpu_features.h"

#include <stddef.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

// Each loop issues `rounds` × 12 dot-product instructions on 12 independent accumulators (more than the
// instruction's latency × issue width on the cores measured), with nothing else but the loop counter; the
// empty asm keeps the compiler from folding the constant operands out of the loop.
#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static int dots_zmm(long rounds) {
    __m512i acc[12], x = _mm512_set1_epi8(3);
    const __m512i y = _mm512_set1_epi8(5);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_epi32(i);
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
        __asm__ volatile("" : "+v"(x));
    }
    for (int i = 1; i < 12; i++) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
    return _mm512_reduce_add_epi32(acc[0]);
}

__attribute__((target("avx2,avxvnni"), noinline)) static int dots_ymm(long rounds) {
    __m256i acc[12], x = _mm256_set1_epi8(3);
    const __m256i y = _mm256_set1_epi8(5);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_epi32(i);
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < 12; i++) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], x, y);
        __asm__ volatile("" : "+v"(x));
    }
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
    return _mm256_extract_epi32(acc[0], 0);
}
#elif defined(__aarch64__)
__attribute__((target("dotprod"), noinline)) static int dots_sdot(long rounds) {
    int32x4_t acc[12];
    int8x16_t x = vdupq_n_s8(3);
    const int8x16_t y = vdupq_n_s8(5);
    for (int i = 0; i < 12; i++) acc[i] = vdupq_n_s32(i);
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < 12; i++) acc[i] = vdotq_s32(acc[i], x, y);
        __asm__ volatile("" : "+w"(x));
    }
    for (int i = 1; i < 12; i++) acc[0] = vaddq_s32(acc[0], acc[i]);
    return vgetq_lane_s32(acc[0], 0);
}
#endif

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double ck_dot_ceiling_gmacs(const char **instruction) {
    const ck_cpu_features *cpu = ck_cpu_features_get();
    int (*dots)(long) = NULL;
    const char *name = NULL;
    double macs_per_instruction = 0;
#if defined(__x86_64__)
    if (cpu->runs[CK_TIER_AVX512VNNI]) dots = dots_zmm, name = "vpdpbusd zmm", macs_per_instruction = 64;
    else if (cpu->runs[CK_TIER_AVXVNNI]) dots = dots_ymm, name = "vpdpbusd ymm", macs_per_instruction = 32;
#elif defined(__aarch64__)
    if (cpu->runs[CK_TIER_NEONDOT]) dots = dots_sdot, name = "sdot", macs_per_instruction = 16;
#else
    (void)cpu;
#endif
    if (instruction) *instruction = name;
    if (!dots) return 0;
    // About 12 M instructions a trial (a few ms); the best of 5, so that a trial the core spent elsewhere does not count.
    const long rounds = 1000000;
    double best = 1e30;
    volatile int sink = 0; // the sums are used, so the loops stay
    for (int trial = 0; trial < 5; trial++) {
        const double start = seconds();
        sink += dots(rounds);
        const double elapsed = seconds() - start;
        if (elapsed < best) best = elapsed;
    }
    return (double)rounds * 12 * macs_per_instruction / best * 1e-9;
}
