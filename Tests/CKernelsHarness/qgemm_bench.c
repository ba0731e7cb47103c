// Single-thread GMAC/s of every available qgemm set on a few model-like shapes, after the machine's own ceiling:
// the widest 8-bit dot-product instruction the CPU has (vpdpbusd, or sdot on AArch64), issued on 12 independent
// accumulators with nothing else in the loop (no loads, no epilogue), which no product can beat.
//   qgemm_bench [m n k]...   (default: 16384 256 64, 4096 1024 256, 1024 1024 1024)
//   clang -O3 -ffp-contract=off -ISources/CKernels/include -ISources/CKernels Sources/CKernels/*.c \
//     Tests/CKernelsHarness/qgemm_bench.c -o qgemm_bench -lm -lpthread && ./qgemm_bench
// Not a test: numbers depend on the machine and its load; best of several runs.
#include "ckernels_qgemm.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#include <sys/auxv.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Each loop runs `n` rounds of 12 dot-product instructions; the empty asm keeps the compiler from folding the
// constant operands out of the loop.
#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) static int dots_zmm(long n) {
    __m512i acc[12], x = _mm512_set1_epi8(3);
    const __m512i y = _mm512_set1_epi8(5);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_epi32(i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], x, y);
        __asm__ volatile("" : "+v"(x));
    }
    for (int i = 1; i < 12; i++) acc[0] = _mm512_add_epi32(acc[0], acc[i]);
    return _mm512_reduce_add_epi32(acc[0]);
}

__attribute__((target("avx2,avxvnni"), noinline)) static int dots_ymm(long n) {
    __m256i acc[12], x = _mm256_set1_epi8(3);
    const __m256i y = _mm256_set1_epi8(5);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_epi32(i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < 12; i++) acc[i] = _mm256_dpbusd_avx_epi32(acc[i], x, y);
        __asm__ volatile("" : "+v"(x));
    }
    for (int i = 1; i < 12; i++) acc[0] = _mm256_add_epi32(acc[0], acc[i]);
    return _mm256_extract_epi32(acc[0], 0);
}
#elif defined(__aarch64__)
__attribute__((target("dotprod"), noinline)) static int dots_sdot(long n) {
    int32x4_t acc[12];
    int8x16_t x = vdupq_n_s8(3);
    const int8x16_t y = vdupq_n_s8(5);
    for (int i = 0; i < 12; i++) acc[i] = vdupq_n_s32(i);
    for (long r = 0; r < n; r++) {
        for (int i = 0; i < 12; i++) acc[i] = vdotq_s32(acc[i], x, y);
        __asm__ volatile("" : "+w"(x));
    }
    for (int i = 1; i < 12; i++) acc[0] = vaddq_s32(acc[0], acc[i]);
    return vgetq_lane_s32(acc[0], 0);
}
#endif

/// Prints the dot-product ceiling of this CPU in GMAC/s (best of 5 trials), if it has such an instruction.
static void peak(void) {
    int (*dots)(long) = NULL;
    const char *name = NULL;
    int macs_per_instruction = 0;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw"))
        dots = dots_zmm, name = "vpdpbusd zmm", macs_per_instruction = 64;
    else if (__builtin_cpu_supports("avxvnni"))
        dots = dots_ymm, name = "vpdpbusd ymm", macs_per_instruction = 32;
#elif defined(__aarch64__)
    if (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) dots = dots_sdot, name = "sdot", macs_per_instruction = 16;
#endif
    if (!dots) {
        printf("peak: no 8-bit dot-product instruction on this CPU\n");
        return;
    }
    const long rounds = 20000000;
    double best = 1e30;
    volatile int sink = 0; // the sums are used, so the loops are not removed
    for (int trial = 0; trial < 5; trial++) {
        double t0 = now();
        sink += dots(rounds);
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("peak: %s on 12 independent accumulators %7.1f GMAC/s\n", name,
           (double)rounds * 12 * macs_per_instruction / best * 1e-9);
}

static void bench(const ck_qgemm_kernels *set, size_t m, size_t n, size_t k, ck_qgemm_output output) {
    size_t lda = (k + 63) / 64 * 64;
    uint8_t *a = aligned_alloc(64, m * lda);
    int8_t *b = malloc(n * k);
    for (size_t i = 0; i < m * lda; i++) a[i] = (uint8_t)(i * 7 + 3);
    for (size_t i = 0; i < n * k; i++) b[i] = (int8_t)(i * 13 + 1);
    size_t bytes = (set->packed_size(n, k) + 63) / 64 * 64;
    void *packed = aligned_alloc(64, bytes);
    set->pack(b, n, k, k, packed);
    int32_t *offset = calloc(n, sizeof *offset);
    float *scale = malloc(n * sizeof *scale), *bias = malloc(n * sizeof *bias);
    for (size_t j = 0; j < n; j++) scale[j] = 1e-4f, bias[j] = 0.5f;
    ck_qgemm_epilogue ep = {offset, scale, bias, 1, output, 10.0f, 128};
    void *c = aligned_alloc(64, (m * n * 4 + 63) / 64 * 64);
    memset(c, 0, m * n * 4);
    double macs = (double)m * n * k, best = 1e30;
    int reps = (int)(2e9 / macs) + 1;
    for (int trial = 0; trial < 5; trial++) {
        double t0 = now();
        for (int r = 0; r < reps; r++) set->gemm(m, n, k, a, lda, packed, &ep, c, n);
        double t = (now() - t0) / reps;
        if (t < best) best = t;
    }
    printf("%-20s m=%-6zu n=%-5zu k=%-5zu %-4s %7.1f GMAC/s\n", set->name, m, n, k,
           output == CK_QGEMM_OUT_U8 ? "u8" : "f32", macs / best * 1e-9);
    free(a), free(b), free(packed), free(offset), free(scale), free(bias), free(c);
}

int main(int argc, char **argv) {
    size_t shapes[16][3] = {{16384, 256, 64}, {4096, 1024, 256}, {1024, 1024, 1024}};
    size_t nshapes = 3;
    if (argc > 1) {
        nshapes = 0;
        for (int i = 1; i + 2 < argc && nshapes < 16; i += 3, nshapes++)
            for (int d = 0; d < 3; d++) shapes[nshapes][d] = strtoul(argv[i + d], NULL, 10);
    }
    setvbuf(stdout, NULL, _IOLBF, 0); // each line as soon as it is measured, also into a pipe or file
    peak();
    const ck_qgemm_kernels *sets[8];
    size_t nsets = ck_qgemm_available(sets, 8);
    for (size_t s = 0; s < nsets; s++)
        for (size_t i = 0; i < nshapes; i++) {
            bench(sets[s], shapes[i][0], shapes[i][1], shapes[i][2], CK_QGEMM_OUT_F32);
            if (i == 0) bench(sets[s], shapes[i][0], shapes[i][1], shapes[i][2], CK_QGEMM_OUT_U8);
        }
    return 0;
}
