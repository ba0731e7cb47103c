// Checks every qgemm kernel set this CPU runs against ck_qgemm_reference, bit for
// bit, over shapes that cross every tile edge (m, n around mr/nr; k around the
// k group; strides wider than the matrices). Built from Sources/CKernels by run.sh,
// natively and for AArch64 under qemu.
//
//   qgemm_check                      sweep every available set; "N passed, M failed"
//   qgemm_check --list               print the isa of every available set, best first
//   qgemm_check --expect-select ISA  exit 0 iff ck_qgemm_select() (after MTLSEG_KERNELS) is ISA
#include "ckernels_qgemm.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) { // xorshift64*: fixed seed, so failures repeat
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}
static float rnd_unit(void) { return (float)(rnd() >> 8) / 16777216.0f; } // [0, 1)

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/// One problem: A, B and the epilogue in reference form (a_shift 0).
typedef struct {
    size_t m, n, k, lda, ldb, ldc;
    uint8_t *a;
    int8_t *b;
    int32_t *offset;
    float *scale, *bias;
    ck_qgemm_epilogue ep;
    size_t c_bytes;
    unsigned char *c_init; // starting contents of C (matter for accumulate and for the ldc gap)
    int no_min;            // B holds no −128
} problem;

// Mostly random values; every few elements the extremes, where saturation bugs live.
static uint8_t rnd_a(int extreme) { return extreme ? (rnd() & 1 ? 255 : 0) : (uint8_t)rnd(); }
static int8_t rnd_b(int extreme) { return extreme ? (rnd() & 1 ? 127 : -128) : (int8_t)rnd(); }

static void make_problem(problem *p, size_t m, size_t n, size_t k, ck_qgemm_output output, size_t max_k_group) {
    int all_extreme = rnd() % 4 == 0; // a quarter of the problems: a = 255 (or 0), b = ±128/127 everywhere
    // Half the problems have B as the project's quantizers write it, in [−127, 127] (−128 becomes −127):
    // sets may take a faster path for those (neon-4x16c2 sums two products in 16 bits), and a = 0 with
    // b = −127 is where that path's sums are largest.
    int no_min = p->no_min = rnd() % 2 == 0;
    uint8_t a_extreme = no_min && rnd() % 2 ? 0 : 255;
    p->m = m, p->n = n, p->k = k;
    p->lda = round_up(k, max_k_group) + rnd() % 9; // ≥ k rounded up to every set's k group
    p->ldb = k + rnd() % 5;
    p->ldc = n + rnd() % 7;
    p->a = malloc(m * p->lda); // exactly m rows, so a sanitizer sees any read past them
    p->b = malloc(n * p->ldb);
    for (size_t i = 0; i < m * p->lda; i++) p->a[i] = all_extreme ? a_extreme : rnd_a(rnd() % 8 == 0);
    for (size_t i = 0; i < n * p->ldb; i++) {
        p->b[i] = all_extreme ? (rnd() & 1 ? 127 : -128) : rnd_b(rnd() % 8 == 0);
        if (no_min && p->b[i] == -128) p->b[i] = -127;
    }
    p->offset = malloc(n * sizeof(int32_t));
    p->scale = malloc(n * sizeof(float));
    p->bias = malloc(n * sizeof(float));
    int32_t zp = (int32_t)(rnd() % 256);
    for (size_t j = 0; j < n; j++) {
        int32_t colsum = 0;
        for (size_t kk = 0; kk < k; kk++) colsum += p->b[j * p->ldb + kk];
        p->offset[j] = zp * colsum + (int32_t)(rnd() % 2001) - 1000;
        // Scales of a real layer are ~1e-5..1e-2; a few negative ones and zero exercise signs.
        p->scale[j] = (rnd() % 16 == 0) ? 0.0f : (rnd() % 8 == 0 ? -1.0f : 1.0f) * (1e-5f + rnd_unit() * 1e-2f);
        p->bias[j] = (rnd_unit() - 0.5f) * 4.0f;
    }
    p->ep = (ck_qgemm_epilogue){
        .offset = p->offset,
        .scale = p->scale,
        .bias = rnd() % 4 == 0 ? NULL : p->bias,
        .relu = (int)(rnd() & 1),
        .output = output,
        .out_scale_inv = 1.0f / (0.01f + rnd_unit() * 0.5f),
        .out_zero_point = (int32_t)(rnd() % 256),
    };
    // Now and then an output scale that sends v·inv to ±huge or ±inf: the clamp must
    // happen before the float → int conversion.
    static const float extreme_inv[] = {1e30f, -1e30f, 1e38f, 3e9f, -3e9f};
    if (output == CK_QGEMM_OUT_U8 && rnd() % 8 == 0) p->ep.out_scale_inv = extreme_inv[rnd() % 5];
    size_t esize = output == CK_QGEMM_OUT_U8 ? 1 : 4;
    p->c_bytes = m * p->ldc * esize;
    p->c_init = malloc(p->c_bytes ? p->c_bytes : 1);
    if (output == CK_QGEMM_OUT_U8) {
        for (size_t i = 0; i < p->c_bytes; i++) p->c_init[i] = (unsigned char)rnd();
    } else {
        float *f = (float *)p->c_init;
        for (size_t i = 0; i < m * p->ldc; i++) f[i] = (rnd_unit() - 0.5f) * 10.0f;
    }
}

static void free_problem(problem *p) {
    free(p->a), free(p->b), free(p->offset), free(p->scale), free(p->bias), free(p->c_init);
}

static const char *output_name(ck_qgemm_output o) {
    return o == CK_QGEMM_OUT_F32 ? "f32" : o == CK_QGEMM_OUT_F32_ACCUMULATE ? "f32+=" : "u8";
}

/// Runs one set on the problem and compares all of C, the ldc gap included, with `expected`.
static int check_set(const ck_qgemm_kernels *set, const problem *p, const unsigned char *expected, int verbose) {
    size_t bytes = set->packed_size(p->n, p->k);
    void *packed = aligned_alloc(64, round_up(bytes ? bytes : 1, 64));
    set->pack(p->b, p->n, p->k, p->ldb, packed);
    // The set's offsets fold in its activation shift: Σ(a − s)·b = Σ a·b − s·Σ b.
    int32_t *offset = malloc((p->n ? p->n : 1) * sizeof(int32_t));
    for (size_t j = 0; j < p->n; j++) {
        int32_t colsum = 0;
        for (size_t kk = 0; kk < p->k; kk++) colsum += p->b[j * p->ldb + kk];
        offset[j] = p->offset[j] - set->a_shift * colsum;
    }
    ck_qgemm_epilogue ep = p->ep;
    ep.offset = offset;
    unsigned char *c = malloc(p->c_bytes ? p->c_bytes : 1);
    memcpy(c, p->c_init, p->c_bytes);
    set->gemm(p->m, p->n, p->k, p->a, p->lda, packed, &ep, c, p->ldc);
    int ok = memcmp(c, expected, p->c_bytes) == 0;
    if (!ok && verbose) {
        size_t esize = p->ep.output == CK_QGEMM_OUT_U8 ? 1 : 4;
        for (size_t i = 0; i < p->c_bytes; i += esize) {
            if (memcmp(c + i, expected + i, esize) == 0) continue;
            size_t row = i / esize / p->ldc, col = i / esize % p->ldc;
            if (esize == 1)
                printf("  first difference at C[%zu][%zu]: got %u, want %u\n", row, col, c[i], expected[i]);
            else {
                float got, want;
                memcpy(&got, c + i, 4), memcpy(&want, expected + i, 4);
                printf("  first difference at C[%zu][%zu]: got %.9g, want %.9g\n", row, col, got, want);
            }
            break;
        }
    }
    free(c), free(offset), free(packed);
    return ok;
}

/// Checks every set on one problem against the reference, counting the results.
static void check_problem(const ck_qgemm_kernels *const *sets, size_t nsets, size_t m, size_t n, size_t k,
                          ck_qgemm_output o, size_t max_k_group, size_t *passed, size_t *failed) {
    problem p;
    make_problem(&p, m, n, k, o, max_k_group);
    unsigned char *expected = malloc(p.c_bytes ? p.c_bytes : 1);
    memcpy(expected, p.c_init, p.c_bytes);
    ck_qgemm_reference(m, n, k, p.a, p.lda, p.b, p.ldb, &p.ep, expected, p.ldc);
    for (size_t s = 0; s < nsets; s++) {
        if (check_set(sets[s], &p, expected, *failed < 20)) {
            (*passed)++;
        } else {
            if (*failed < 20)
                printf("FAIL %s m=%zu n=%zu k=%zu lda=%zu ldc=%zu out=%s relu=%d bias=%s b=%s\n", sets[s]->name, m, n,
                       k, p.lda, p.ldc, output_name(p.ep.output), p.ep.relu, p.ep.bias ? "yes" : "no",
                       p.no_min ? "[-127,127]" : "any");
            (*failed)++;
        }
    }
    free(expected);
    free_problem(&p);
}

static int sweep(void) {
    const ck_qgemm_kernels *sets[8];
    size_t nsets = ck_qgemm_available(sets, 8);
    size_t max_k_group = 1;
    for (size_t s = 0; s < nsets; s++) {
        printf("set %s (isa %s, %zux%zu, k group %zu, a_shift %d)\n", sets[s]->name, sets[s]->isa, sets[s]->mr,
               sets[s]->nr, sets[s]->k_group, (int)sets[s]->a_shift);
        if (sets[s]->k_group > max_k_group) max_k_group = sets[s]->k_group;
    }
    static const size_t ms[] = {1, 2, 3, 7, 8, 9, 15, 17, 33, 64, 100};
    static const size_t ns[] = {1, 2, 3, 4, 8, 15, 16, 17, 31, 32, 33, 64, 100};
    static const size_t ks[] = {1, 2, 3, 4, 5, 11, 31, 32, 33, 64, 147, 255, 1024};
    size_t passed = 0, failed = 0, combo = 0;
    for (size_t mi = 0; mi < sizeof ms / sizeof *ms; mi++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t ki = 0; ki < sizeof ks / sizeof *ks; ki++, combo++) {
                size_t m = ms[mi], n = ns[ni], k = ks[ki];
                // Big products take one output kind each (rotating) to keep qemu runs short;
                // small ones, where the edges are, take all three.
                int big = m * n * k > 1000000;
                for (int o = 0; o < 3; o++) {
                    if (big && (size_t)o != combo % 3) continue;
                    check_problem(sets, nsets, m, n, k, (ck_qgemm_output)o, max_k_group, &passed, &failed);
                }
            }
    // Long k (the sets that pack A in slices of k take several) and more than 16 panels of 16 (blocks of
    // panels), with ragged edges.
    static const size_t long_shapes[][3] = {{7, 300, 4100}, {13, 33, 2049}, {6, 16, 2048}, {1, 5, 6151}};
    for (size_t i = 0; i < sizeof long_shapes / sizeof *long_shapes; i++)
        check_problem(sets, nsets, long_shapes[i][0], long_shapes[i][1], long_shapes[i][2], (ck_qgemm_output)(i % 3),
                      max_k_group, &passed, &failed);
    printf("%zu passed, %zu failed\n", passed, failed);
    return failed == 0 && nsets > 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        const ck_qgemm_kernels *sets[8];
        size_t nsets = ck_qgemm_available(sets, 8);
        for (size_t s = 0; s < nsets; s++) printf("%s\n", sets[s]->isa);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--expect-select") == 0) {
        const ck_qgemm_kernels *chosen = ck_qgemm_select();
        int ok = chosen && strcmp(chosen->isa, argv[2]) == 0;
        printf("MTLSEG_KERNELS=%s selects %s: %s\n", getenv("MTLSEG_KERNELS") ? getenv("MTLSEG_KERNELS") : "(unset)",
               chosen ? chosen->name : "nothing", ok ? "ok" : "WRONG");
        return ok ? 0 : 1;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: qgemm_check [--list | --expect-select ISA]\n");
        return 2;
    }
    printf("selected: %s\n", ck_qgemm_select()->name);
    return sweep();
}
