// The fused heads' int8 products on their band shapes against the GEMM on a large shape, single thread,
// as the demo MTLSegFormer runs them at 256² (64×64 output pixels, D = 256, two tasks):
//   per band of B pixels: the stacked task maps [B × 2D] = A[B × D]·W[2D × D]ᵀ (f32 out), each task's gates
//   writing its [F_t | G_t] in u8 (ck_gate_concat_u8), each task's combine [B × D] = [B × 2D]·W[D × 2D]ᵀ (u8 out);
//   the large shape: 1024×1024×256 (qgemm_bench.c's 4096×1024×256 cut to a quarter, so that a trial is short), f32 out.
// Each figure is the best of many short trials, so that on a shared machine it is a trial that
// ran alone, not the load, that is measured.
//   clang -O3 -ffp-contract=off -ISources/CKernels/include -ISources/CKernels Sources/CKernels/*.c \
//     Tests/CKernelsHarness/heads_bench.c -o heads_bench -lm -lpthread && ./heads_bench [band pixels]
#include "ckernels_q8.h"
#include "ckernels_qgemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
    size_t n, k;
    void *packed;
    int32_t *offset;
    float *scale, *bias;
} layer;

static layer make_layer(const ck_qgemm_kernels *set, size_t n, size_t k) {
    layer l = {n, k, NULL, NULL, NULL, NULL};
    int8_t *b = malloc(n * k);
    for (size_t i = 0; i < n * k; i++) b[i] = (int8_t)(i * 13 + 1);
    l.packed = aligned_alloc(64, (set->packed_size(n, k) + 63) / 64 * 64);
    set->pack(b, n, k, k, l.packed);
    l.offset = calloc(n, sizeof *l.offset);
    l.scale = malloc(n * sizeof *l.scale);
    l.bias = malloc(n * sizeof *l.bias);
    for (size_t j = 0; j < n; j++) l.scale[j] = 1e-4f, l.bias[j] = 0.5f;
    free(b);
    return l;
}

static void run(const ck_qgemm_kernels *set, const layer *l, size_t m, const uint8_t *a, size_t lda, void *c, size_t ldc,
                ck_qgemm_output output) {
    ck_qgemm_epilogue ep = {l->offset, l->scale, l->bias, 1, output, 10.0f, 128};
    set->gemm(m, l->n, l->k, a, lda, l->packed, &ep, c, ldc);
}

int main(int argc, char **argv) {
    const ck_qgemm_kernels *set = ck_qgemm_select();
    size_t pixels = 4096, d = 256, tasks = 2, band = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    if (band == 0 || band > pixels) band = 64;
    layer maps = make_layer(set, tasks * d, d), combine = make_layer(set, d, 2 * d), large = make_layer(set, 1024, 256);
    uint8_t *fused = aligned_alloc(64, 4096 * 256);
    for (size_t i = 0; i < 4096 * 256; i++) fused[i] = (uint8_t)(i * 7 + 3);
    float *task_maps = aligned_alloc(64, band * tasks * d * sizeof(float));
    uint8_t *concat = aligned_alloc(64, band * 2 * d), *combined = aligned_alloc(64, band * d);
    float *large_out = aligned_alloc(64, (size_t)1024 * 1024 * sizeof(float));
    // The gates' weights: small, so that the sigmoids spread over (0, 1).
    float *gate_weights = malloc(2 * tasks * d * sizeof(float)), gate_bias = 0.1f, scratch[CK_GATE_CHUNK];
    for (size_t i = 0; i < 2 * tasks * d; i++) gate_weights[i] = (float)((int)(i * 37 % 101) - 50) * 1e-4f;
    double best_maps = 1e30, best_gates = 1e30, best_combine = 1e30, best_large = 1e30;
    for (int trial = 0; trial < 60; trial++) {
        double t_maps = 0, t_gates = 0, t_combine = 0;
        for (size_t p = 0; p < pixels; p += band) {
            size_t rows = pixels - p < band ? pixels - p : band;
            double t0 = now();
            run(set, &maps, rows, fused + p * d, d, task_maps, tasks * d, CK_QGEMM_OUT_F32);
            t_maps += now() - t0;
            for (size_t t = 0; t < tasks; t++) {
                double u0 = now();
                const float *other = task_maps + (1 - t) * d, *self_w = gate_weights + 2 * t * d, *other_w = self_w + d;
                ck_gate_concat_u8(task_maps + t * d, &other, tasks * d, rows, d, 1, &self_w, &other_w, &gate_bias, 10.0f, 128,
                                  concat, 2 * d, scratch);
                double u1 = now();
                run(set, &combine, rows, concat, 2 * d, combined, d, CK_QGEMM_OUT_U8);
                t_gates += u1 - u0;
                t_combine += now() - u1;
            }
        }
        if (t_maps < best_maps) best_maps = t_maps;
        if (t_gates < best_gates) best_gates = t_gates;
        if (t_combine < best_combine) best_combine = t_combine;
        for (int r = 0; r < 4; r++) {
            double t0 = now();
            run(set, &large, 1024, fused, 256, large_out, 1024, CK_QGEMM_OUT_F32);
            double t_large = now() - t0;
            if (t_large < best_large) best_large = t_large;
        }
    }
    double macs_maps = (double)pixels * tasks * d * d, macs_combine = (double)tasks * pixels * d * 2 * d;
    printf("%s, bands of %zu pixels: task maps %.2f ms (%.0f GMAC/s), gates %.2f ms, combine %.2f ms (%.0f GMAC/s); "
           "1024x1024x256: %.0f GMAC/s\n",
           set->name, band, best_maps * 1e3, macs_maps / best_maps * 1e-9, best_gates * 1e3, best_combine * 1e3,
           macs_combine / best_combine * 1e-9, 1024.0 * 1024 * 256 / best_large * 1e-9);
    return 0;
}
