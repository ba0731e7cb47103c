// Single-thread GMAC/s of every available qgemm set on a few model-like shapes, after the core's own ceiling
// (ck_dot_ceiling_gmacs: the widest 8-bit dot-product instruction issued back to back), which no product can beat.
//   qgemm_bench [m n k]...   (default: 16384 256 64, 4096 1024 256, 1024 1024 1024)
//   clang -O3 -ffp-contract=off -ISources/CKernels/include -ISources/CKernels Sources/CKernels/*.c \
//     Tests/CKernelsHarness/qgemm_bench.c -o qgemm_bench -lm -lpthread && ./qgemm_bench
// Not a test: numbers depend on the machine and its load; best of several runs.
#include "ckernels_cpu.h"
#include "ckernels_qgemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
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
    const char *instruction;
    const double ceiling = ck_dot_ceiling_gmacs(&instruction);
    if (instruction) printf("ceiling: %s on 12 independent accumulators %7.1f GMAC/s\n", instruction, ceiling);
    else printf("ceiling: no 8-bit dot-product instruction on this CPU\n");
    const ck_qgemm_kernels *sets[8];
    size_t nsets = ck_qgemm_available(sets, 8);
    for (size_t s = 0; s < nsets; s++)
        for (size_t i = 0; i < nshapes; i++) {
            bench(sets[s], shapes[i][0], shapes[i][1], shapes[i][2], CK_QGEMM_OUT_F32);
            if (i == 0) bench(sets[s], shapes[i][0], shapes[i][1], shapes[i][2], CK_QGEMM_OUT_U8);
        }
    return 0;
}
