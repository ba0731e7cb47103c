// The int8 engine's hot steps on SegFormer-b0's shapes at 256² (one thread), for counting
// instructions under qemu-user with cost.sh: `cost_steps STEP ITERATIONS` runs STEP's work
// ITERATIONS times after setting it up once, so (count(3) − count(1)) / 2 is one pass.
// Steps: gemm (every int8 GEMM of the 8 blocks, the stage-4 embedding and the decoder, with
// the kernel set ck_qgemm_select picks), dwconv (the Mix-FFNs' depthwise 3×3 + GELU), embed
// (the fp32 convolutions of the first three patch embeddings), softmax, lnq (the LayerNorms
// that write u8), lnf (the LayerNorms that write floats: after each patch embedding, and the
// closing ones of the stages whose output feeds an fp32 embedding, quantized afterwards),
// decoder (the folded decoder's sum), heads (the attention outputs' scaling), kv (the keys'
// and values' symmetric s8 quantization, the values transposed, and their per-head row sums),
// im2col (the u8 patch gathers of the spatial reductions and the stage-4 embedding), argmax
// (the classifier's per-pixel class and class counts).
// Uses only the public kernel API, so it builds against older sources too (cost.sh's baseline).
// Inputs are fixed pseudo-random data: the counts depend on shapes, not on values, except
// where a kernel branches on data (none of these do beyond clamps).
#include "ckernels_attention_q8.h"
#include "ckernels_conv.h"
#include "ckernels_fp32.h"
#include "ckernels_q8.h"
#include "ckernels_qgemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rng = 12345;
static uint32_t next(void) { rng = rng * 1664525u + 1013904223u; return rng >> 8; }
static float frand(void) { return (float)next() / 16777216.0f - 0.5f; } // [−0.5, 0.5)
static void *zalloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    if (!p) { perror("alloc"); exit(2); }
    memset(p, 0, (n + 63) / 64 * 64 + 64);
    return p;
}
static void fill_u8(uint8_t *p, size_t n) { for (size_t i = 0; i < n; i++) p[i] = (uint8_t)next(); }
static void fill_f(float *p, size_t n, float s) { for (size_t i = 0; i < n; i++) p[i] = frand() * s; }

// The 4 encoder stages at 256²: tokens, channels, heads, spatial-reduction tokens (b0: 64 each).
static const size_t side[4] = {64, 32, 16, 8}, chans[4] = {32, 64, 160, 256}, heads[4] = {1, 2, 5, 8}, sr[4] = {8, 4, 2, 1};
enum { DEPTH = 2, KV = 64, DEC = 256, CLASSES = 19 };

typedef struct { size_t m, n, k; uint8_t *a; void *packed; int32_t *off; float *scale, *bias; uint8_t *c; } gemm_job;
static gemm_job jobs[128];
static size_t njobs;

static void add_gemm(size_t m, size_t n, size_t k, size_t times) {
    const ck_qgemm_kernels *set = ck_qgemm_select();
    gemm_job j = {m, n, k, 0, 0, 0, 0, 0, 0};
    const size_t lda = (k + 3) / 4 * 4;
    j.a = zalloc(m * lda);
    fill_u8(j.a, m * lda);
    int8_t *b = zalloc(n * k);
    // Weights as the project's quantizers write them, in [−127, 127]: neon-4x16c2 runs a slower path
    // for a matrix holding −128.
    for (size_t i = 0; i < n * k; i++) b[i] = (int8_t)(next() % 255 - 127);
    j.packed = zalloc(set->packed_size(n, k));
    set->pack(b, n, k, k, j.packed);
    free(b);
    j.off = zalloc(n * 4); j.scale = zalloc(n * 4); j.bias = zalloc(n * 4);
    for (size_t i = 0; i < n; i++) j.scale[i] = 1e-4f, j.bias[i] = frand();
    j.c = zalloc(m * n);
    for (size_t t = 0; t < times; t++) jobs[njobs++] = j;
}

static void gemm_setup(void) {
    for (int s = 0; s < 4; s++) {
        const size_t n = side[s] * side[s], c = chans[s], d = c / heads[s];
        if (s == 3) add_gemm(n, c, 9 * chans[2], 1); // the stage-4 patch embedding (3×3, stride 2)
        add_gemm(n, c, c, 2 * DEPTH);                  // q and the attention's output projection
        if (sr[s] > 1) add_gemm(KV, c, c * sr[s] * sr[s], DEPTH); // spatial reduction (a strided conv)
        add_gemm(KV, 2 * c, c, DEPTH);                 // k and v
        add_gemm(n, KV, d, heads[s] * DEPTH);          // q·kᵀ per head
        add_gemm(n, d, KV, heads[s] * DEPTH);          // attention · v per head
        add_gemm(n, 4 * c, c, DEPTH);                  // Mix-FFN fc1
        add_gemm(n, c, 4 * c, DEPTH);                  // Mix-FFN fc2
        add_gemm(n, DEC, c, 1);                        // the decoder's projection of stage s (folded)
    }
    add_gemm(side[0] * side[0], CLASSES, DEC, 1);      // the classifier
}
static void gemm_run(void) {
    const ck_qgemm_kernels *set = ck_qgemm_select();
    for (size_t i = 0; i < njobs; i++) {
        const gemm_job *j = &jobs[i];
        ck_qgemm_epilogue ep = {j->off, j->scale, j->bias, 1, CK_QGEMM_OUT_U8, 20.0f, 3};
        set->gemm(j->m, j->n, j->k, j->a, (j->k + 3) / 4 * 4, j->packed, &ep, j->c, j->n);
    }
}

static uint8_t *dw_in[4], *dw_out[4];
static float *dw_w[4], *dw_b[4], *dw_scratch[4];
static void dwconv_setup(void) {
    for (int s = 0; s < 4; s++) {
        const size_t n = side[s] * side[s], h = 4 * chans[s];
        dw_in[s] = zalloc(n * h); dw_out[s] = zalloc(n * h);
        fill_u8(dw_in[s], n * h);
        dw_w[s] = zalloc(9 * h * 4); dw_b[s] = zalloc(h * 4); dw_scratch[s] = zalloc(2 * h * 4);
        fill_f(dw_w[s], 9 * h, 0.5f); fill_f(dw_b[s], h, 0.2f);
    }
}
static void dwconv_run(void) {
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < DEPTH; b++)
            ck_dwconv3x3_gelu_u8(dw_in[s], 4 * chans[s], dw_out[s], 4 * chans[s], side[s], side[s], 4 * chans[s], dw_w[s],
                                 dw_b[s], 0.02f, 128, 1 / 0.02f, 10, 0, side[s], dw_scratch[s]);
}

// Embeddings 1–3: 7×7 stride 4 pad 3 on the RGB image (channels first), then 3×3 stride 2 pad 1.
static float *em_in[3], *em_packed[3], *em_bias[3], *em_out[3];
static const size_t em_k[3] = {7, 3, 3}, em_s[3] = {4, 2, 2}, em_in_side[3] = {256, 64, 32}, em_cin[3] = {3, 32, 64};
static void embed_setup(void) {
    for (int e = 0; e < 3; e++) {
        const size_t is = em_in_side[e], ci = em_cin[e], co = chans[e], k = em_k[e];
        em_in[e] = zalloc(is * is * ci * 4); fill_f(em_in[e], is * is * ci, 2.0f);
        float *w = zalloc(co * k * k * ci * 4); fill_f(w, co * k * k * ci, 0.2f);
        em_packed[e] = zalloc(ck_conv2d_f32_packed_size(co, k, ci) * 4);
        ck_conv2d_f32_pack(w, co, k, ci, em_packed[e]);
        free(w);
        em_bias[e] = zalloc(co * 4); fill_f(em_bias[e], co, 0.2f);
        em_out[e] = zalloc(side[e] * side[e] * co * 4);
    }
}
static void embed_run(void) {
    for (int e = 0; e < 3; e++) {
        const size_t is = em_in_side[e], ci = em_cin[e];
        const int chw = e == 0; // the image is channels first, the maps channels last
        ck_conv2d_f32(em_in[e], is, is, ci, chw ? is : is * ci, chw ? 1 : ci, chw ? is * is : 1, em_packed[e], chans[e],
                      em_k[e], em_s[e], em_k[e] / 2, em_bias[e], em_out[e], side[e], side[e], 0, side[e]);
    }
}

static float *sm_in[4], *sm_inv[4];
static uint8_t *sm_out[4];
static void softmax_setup(void) {
    for (int s = 0; s < 4; s++) {
        const size_t rows = side[s] * side[s] * heads[s];
        sm_in[s] = zalloc(rows * KV * 4); fill_f(sm_in[s], rows * KV, 8.0f);
        sm_out[s] = zalloc(rows * KV); sm_inv[s] = zalloc(rows * 4);
    }
}
static void softmax_run(void) {
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < DEPTH; b++)
            ck_softmax_exp_u8(sm_in[s], KV, side[s] * side[s] * heads[s], KV, sm_out[s], KV, sm_inv[s]);
}

// LayerNorms that write u8: before attention and before the Mix-FFN in every block, after
// each patch embedding, and on the spatially reduced tokens.
static float *ln_in[4], *ln_g[4], *ln_b[4];
static uint8_t *ln_out[4];
static void lnq_setup(void) {
    for (int s = 0; s < 4; s++) {
        const size_t n = side[s] * side[s], c = chans[s];
        ln_in[s] = zalloc(n * c * 4); fill_f(ln_in[s], n * c, 4.0f);
        ln_g[s] = zalloc(c * 4); ln_b[s] = zalloc(c * 4);
        fill_f(ln_g[s], c, 0.2f); fill_f(ln_b[s], c, 0.2f);
        for (size_t i = 0; i < c; i++) ln_g[s][i] += 1.0f;
        ln_out[s] = zalloc(n * c);
    }
}
static void lnq_run(void) {
    for (int s = 0; s < 4; s++) {
        const size_t n = side[s] * side[s], c = chans[s];
        for (int r = 0; r < 2 * DEPTH + 1; r++)
            ck_layer_norm_quantize_u8(ln_in[s], ln_out[s], c, n, c, ln_g[s], ln_b[s], 1e-6f, 1 / 0.03f, 120);
        if (sr[s] > 1) ck_layer_norm_quantize_u8(ln_in[s], ln_out[s], c, KV, c, ln_g[s], ln_b[s], 1e-5f, 1 / 0.03f, 120);
    }
}

static float *dec_band, *dec_band_init, *dec_maps[3], *dec_bias, *dec_scratch;
static uint8_t *dec_out;
static size_t dec_h[3], dec_w[3];
static void decoder_setup(void) {
    const size_t n = side[0] * side[0];
    dec_band = zalloc(n * DEC * 4);
    dec_band_init = zalloc(n * DEC * 4);
    fill_f(dec_band_init, n * DEC, 2.0f);
    for (int i = 0; i < 3; i++) {
        dec_h[i] = dec_w[i] = side[i + 1];
        dec_maps[i] = zalloc(dec_h[i] * dec_w[i] * DEC * 4);
        fill_f(dec_maps[i], dec_h[i] * dec_w[i] * DEC, 2.0f);
    }
    dec_bias = zalloc(DEC * 4); fill_f(dec_bias, DEC, 0.2f);
    dec_scratch = zalloc((side[1] + side[2] + side[3]) * DEC * 4);
    dec_out = zalloc(n * DEC);
}
static void decoder_run(void) {
    // The band is scratch: refilled from a copy (the same work in every pass, and little of it).
    memcpy(dec_band, dec_band_init, side[0] * side[0] * DEC * 4);
    ck_decoder_sum_quantize_u8(dec_band, 3, (const float *const *)dec_maps, dec_h, dec_w, DEC, side[0], side[0], 0, side[0],
                               dec_bias, 1 / 0.05f, 0, dec_out, DEC, dec_scratch);
}

static float *hd_in[4], *hd_f[4];
static uint8_t *hd_out[4];
static void heads_setup(void) {
    for (int s = 0; s < 4; s++) {
        const size_t n = side[s] * side[s], c = chans[s];
        hd_in[s] = zalloc(n * c * 4); fill_f(hd_in[s], n * c, 2.0f);
        hd_f[s] = zalloc(n * heads[s] * 4);
        for (size_t i = 0; i < n * heads[s]; i++) hd_f[s][i] = 0.5f + frand();
        hd_out[s] = zalloc(n * c);
    }
}
static void heads_run(void) {
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < DEPTH; b++)
            ck_scale_heads_quantize_u8(hd_in[s], chans[s], side[s] * side[s], heads[s], chans[s] / heads[s], hd_f[s],
                                       hd_out[s], chans[s], 1 / 0.05f, 128);
}

// Float LayerNorms: in place after each patch embedding, and the closing ones of stages 1 and 2
// (whose outputs feed the fp32 embeddings of stages 2 and 3) into floats, then quantized.
static float *lf_tokens[4], *lf_out[4];
static uint8_t *lf_q[4];
static void lnf_setup(void) {
    lnq_setup();
    for (int s = 0; s < 4; s++) {
        const size_t n = side[s] * side[s], c = chans[s];
        lf_tokens[s] = zalloc(n * c * 4); lf_out[s] = zalloc(n * c * 4); lf_q[s] = zalloc(n * c);
    }
}
static void lnf_run(void) {
    for (int s = 0; s < 4; s++) {
        const size_t n = side[s] * side[s], c = chans[s];
        memcpy(lf_tokens[s], ln_in[s], n * c * 4); // in place: restore the input (the same work in every pass)
        ck_layer_norm_f32(lf_tokens[s], lf_tokens[s], n, c, ln_g[s], ln_b[s], 1e-6f);
        if (s < 2) {
            ck_layer_norm_f32(ln_in[s], lf_out[s], n, c, ln_g[s], ln_b[s], 1e-6f);
            ck_quantize_rows_u8(lf_out[s], c, lf_q[s], c, n, c, 1 / 0.03f, 120);
        }
    }
}

// Keys and values [64][c] per block: keys s8 row-major, values s8 transposed, per-head row sums.
static float *kv_k[4], *kv_v[4];
static int8_t *kv_kq[4], *kv_vq[4];
static int32_t *kv_sums;
static void kv_setup(void) {
    for (int s = 0; s < 4; s++) {
        const size_t c = chans[s];
        kv_k[s] = zalloc(KV * c * 4); kv_v[s] = zalloc(KV * c * 4);
        fill_f(kv_k[s], KV * c, 6.0f); fill_f(kv_v[s], KV * c, 6.0f);
        kv_kq[s] = zalloc(KV * c); kv_vq[s] = zalloc(KV * c);
    }
    kv_sums = zalloc(256 * 4);
}
static void kv_run(void) {
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < DEPTH; b++) {
            const size_t c = chans[s], d = c / heads[s];
            ck_quantize_symmetric_s8(kv_k[s], c, KV, c, kv_kq[s], c, 0);
            ck_quantize_symmetric_s8(kv_v[s], c, KV, c, kv_vq[s], KV, 1);
            for (size_t h = 0; h < heads[s]; h++) {
                ck_row_sums_s8(kv_kq[s] + h * d, KV, d, c, 7, kv_sums);
                ck_row_sums_s8(kv_vq[s] + h * d * KV, d, KV, KV, -128, kv_sums);
            }
        }
}

// u8 patch gathers: the spatial reductions (kernel = stride = sr) of stages 1–3, and the stage-4
// embedding's 3×3 stride-2 patches of stage 3's output.
static uint8_t *ic_in[4], *ic_cols;
static void im2col_setup(void) {
    for (int s = 0; s < 3; s++) { ic_in[s] = zalloc(side[s] * side[s] * chans[s]); fill_u8(ic_in[s], side[s] * side[s] * chans[s]); }
    ic_cols = zalloc(KV * 9 * chans[2] + KV * chans[0] * sr[0] * sr[0]);
}
static void im2col_run(void) {
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < DEPTH; b++)
            ck_im2col_hwc_u8(ic_in[s], chans[s], side[s], side[s], chans[s], sr[s], sr[s], 0, side[s] / sr[s], side[s] / sr[s],
                             120, ic_cols, chans[s] * sr[s] * sr[s], 0, side[s] / sr[s]);
    ck_im2col_hwc_u8(ic_in[2], chans[2], side[2], side[2], chans[2], 3, 2, 1, side[3], side[3], 120, ic_cols, 9 * chans[2], 0, side[3]);
}

// The classifier's epilogue: 19 logits per pixel at 64×64 to each pixel's class and the class counts.
// Declared weak here as well: older kernels (cost.sh's baseline) lack it, and the step then says so.
void ck_argmax_count_f32(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask, uint32_t *counts)
    __attribute__((weak));
static float *am_logits;
static uint8_t *am_mask;
static uint32_t *am_counts;
static void argmax_setup(void) {
    if (!ck_argmax_count_f32) {
        fprintf(stderr, "cost_steps: these kernels have no ck_argmax_count_f32 (leave the step out: STEPS=...)\n");
        exit(2);
    }
    const size_t n = side[0] * side[0];
    am_logits = zalloc(n * CLASSES * 4); fill_f(am_logits, n * CLASSES, 8.0f);
    am_mask = zalloc(n); am_counts = zalloc(256 * 4);
}
static void argmax_run(void) { ck_argmax_count_f32(am_logits, CLASSES, side[0] * side[0], CLASSES, am_mask, am_counts); }

static const struct { const char *name; void (*setup)(void), (*run)(void); } steps[] = {
    {"gemm", gemm_setup, gemm_run},          {"dwconv", dwconv_setup, dwconv_run}, {"embed", embed_setup, embed_run},
    {"softmax", softmax_setup, softmax_run}, {"lnq", lnq_setup, lnq_run},          {"decoder", decoder_setup, decoder_run},
    {"heads", heads_setup, heads_run},       {"lnf", lnf_setup, lnf_run},          {"kv", kv_setup, kv_run},
    {"im2col", im2col_setup, im2col_run},    {"argmax", argmax_setup, argmax_run},
};

int main(int argc, char **argv) {
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) printf("%s\n", steps[i].name);
        return 0;
    }
    if (argc != 3) { fprintf(stderr, "usage: cost_steps STEP ITERATIONS | --list\n"); return 2; }
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (!strcmp(argv[1], steps[i].name)) {
            steps[i].setup();
            for (int it = atoi(argv[2]); it > 0; it--) steps[i].run();
            return 0;
        }
    fprintf(stderr, "cost_steps: no step %s\n", argv[1]);
    return 2;
}
