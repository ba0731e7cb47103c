// Times the int8 engine's non-GEMM kernels (current sources) against the old
// versions kept in ops_ref.c, on SegFormer-b0's shapes at 512×512, and checks the
// new outputs against the old ones (u8 outputs within ±1, floats within tolerance).
// Build from the package root (plain -O3, as SwiftPM does: the ISA is chosen at run time):
//   /opt/swift/usr/bin/clang -std=c11 -D_GNU_SOURCE -O3 -ISources/CKernels/include -ISources/CKernels \
//     $(ls Sources/CKernels/*.c | grep -v /qgemm_) \
//     Tests/CKernelsHarness/ops_{bench,ref}.c -lm -o /tmp/ops_bench
//   /tmp/ops_bench [reps] [--only=softmax|dwconv|resize|ln|decoder|heads|versions|neon]   (times and checks)
//   /tmp/ops_bench --check                                    (checks only; non-zero exit on failure)
#include "ckernels_attention_q8.h"
#include "ckernels_conv.h"
#include "ckernels_conv_s16.h"
#include "ckernels_fp32.h"
#include "ckernels_q8.h"
#include "ops_dispatch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ref_softmax_exp_u8(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo, float *inv_sums);
void ref_layer_norm_quantize_u8(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point);
void ref_dwconv3x3_gelu_u8(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                           size_t channels, const float *weight, const float *bias,
                           float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                           size_t first_row, size_t row_count, float *scratch);
void ref_scale_heads_quantize_u8(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim, const float *factors,
                                 uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point);
void ref_layer_norm_f32(const float *in, float *out, size_t rows, size_t channels,
                        const float *gamma, const float *beta, float eps);
void ref_resize_bilinear_hwc_rows_f32(const float *in, size_t in_height, size_t in_width, size_t channels,
                                      float *out, size_t out_height, size_t out_width,
                                      size_t first_row, size_t row_count, int accumulate);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); // CPU time: a busy machine does not inflate it
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) { // [0, 1)
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0));
}
static float nrand(void) { // ~N(0,1)
    float s = 0; for (int i = 0; i < 4; i++) s += frand();
    return (s - 2.0f) * 1.7320508f;
}
static void *alloc(size_t n) {
    void *p = aligned_alloc(64, (n + 63) / 64 * 64 + 64);
    memset(p, 0, (n + 63) / 64 * 64 + 64);
    return p;
}

static int reps = 15;
static int failures = 0;

typedef void (*work_fn)(void *ctx, int use_ref);
static int cmp_d(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void time_both(const char *name, work_fn f, void *ctx) {
    double old_t[64], new_t[64];
    int n = reps < 64 ? reps : 64;
    f(ctx, 0); f(ctx, 1); // warm
    for (int i = 0; i < n; i++) { // interleave to share the noise
        double t0 = now(); f(ctx, 1); double t1 = now(); f(ctx, 0); double t2 = now();
        old_t[i] = t1 - t0; new_t[i] = t2 - t1;
    }
    qsort(old_t, n, sizeof(double), cmp_d); qsort(new_t, n, sizeof(double), cmp_d);
    printf("%-28s old best %7.3f med %7.3f ms | new best %7.3f med %7.3f ms | x%.2f\n", name,
           old_t[0] * 1e3, old_t[n / 2] * 1e3, new_t[0] * 1e3, new_t[n / 2] * 1e3, old_t[n / 2] / new_t[n / 2]);
}

// ---- softmax: 63488 rows of 256 per forward pass, in blocks of 256 rows (L2-resident scores).
typedef struct { float *scores; uint8_t *e_new, *e_old; float *inv_new, *inv_old; size_t rows, cols, ld, blocks; } sm_ctx;
static void sm_work(void *p, int use_ref) {
    sm_ctx *c = p;
    for (size_t b = 0; b < c->blocks; b++) {
        if (use_ref) ref_softmax_exp_u8(c->scores, c->cols, c->rows, c->cols, c->e_old, c->ld, c->inv_old);
        else ck_softmax_exp_u8(c->scores, c->cols, c->rows, c->cols, c->e_new, c->ld, c->inv_new);
    }
}
static void softmax_case(int timing) {
    for (int variant = 0; variant < 6; variant++) {
        static const size_t colsv[] = {256, 256, 1, 17, 64, 1000};
        static const float spread[] = {3.0f, 30.0f, 1.0f, 5.0f, 0.3f, 8.0f};
        sm_ctx c = {.rows = variant == 3 ? 37 : 256, .cols = colsv[variant], .blocks = 248}; // 37: a last group of 5 rows
        c.ld = (c.cols + 15) / 16 * 16 + 16;
        c.scores = alloc(c.rows * c.cols * 4);
        c.e_new = alloc(c.rows * c.ld); c.e_old = alloc(c.rows * c.ld);
        c.inv_new = alloc(c.rows * 4); c.inv_old = alloc(c.rows * 4);
        for (size_t i = 0; i < c.rows * c.cols; i++) c.scores[i] = nrand() * spread[variant];
        if (variant == 1) for (size_t i = 0; i < c.cols; i++) c.scores[i] = -1e30f; // a row far below
        if (variant == 3) c.scores[3] = -INFINITY;
        ref_softmax_exp_u8(c.scores, c.cols, c.rows, c.cols, c.e_old, c.ld, c.inv_old);
        memset(c.e_new, 0xAB, c.rows * c.ld);
        ck_softmax_exp_u8(c.scores, c.cols, c.rows, c.cols, c.e_new, c.ld, c.inv_new);
        int maxd = 0; double maxrel = 0; size_t diffs = 0, pad_clobber = 0;
        for (size_t r = 0; r < c.rows; r++) {
            for (size_t k = 0; k < c.cols; k++) {
                int d = abs((int)c.e_new[r * c.ld + k] - (int)c.e_old[r * c.ld + k]);
                if (d) diffs++;
                if (d > maxd) maxd = d;
            }
            for (size_t k = c.cols; k < c.ld; k++) pad_clobber += c.e_new[r * c.ld + k] != 0xAB;
            double rel = fabs(c.inv_new[r] - c.inv_old[r]) / c.inv_old[r];
            if (rel > maxrel) maxrel = rel;
        }
        printf("softmax cols=%-4zu spread %-5g: max |Δe| %d (%zu of %zu differ), max rel Δinv_sum %.2e%s\n", c.cols,
               spread[variant], maxd, diffs, c.rows * c.cols, maxrel, pad_clobber ? "  WROTE PAST COLS" : "");
        if (maxd > 1 || maxrel > 1e-2 || pad_clobber) failures++;
#if defined(CK_HAVE_X86_KERNELS)
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) { // the AVX2 set, whatever the dispatch picks
            ck_softmax_exp_u8_avx2(c.scores, c.cols, c.rows, c.cols, c.e_new, c.ld, c.inv_new);
            int d2 = 0;
            for (size_t i = 0; i < c.rows; i++)
                for (size_t k = 0; k < c.cols; k++) {
                    int d = abs((int)c.e_new[i * c.ld + k] - (int)c.e_old[i * c.ld + k]);
                    if (d > d2) d2 = d;
                }
            printf("  (avx2 version: max |Δe| %d)\n", d2);
            if (d2 > 1) failures++;
        }
#endif
        if (timing && variant == 0) time_both("softmax_exp_u8 (fwd pass)", sm_work, &c);
        free(c.scores); free(c.e_new); free(c.e_old); free(c.inv_new); free(c.inv_old);
    }
}

// ---- dwconv3x3 + GELU: 128²×128, 64²×256, 32²×640, 16²×1024, two calls each.
typedef struct { uint8_t *in, *out_new, *out_old; float *w, *b, *scratch; size_t h, wd, ch, ld; } dw_ctx;
static void dw_run(dw_ctx *c, int use_ref, size_t first, size_t count) {
    if (use_ref) ref_dwconv3x3_gelu_u8(c->in, c->ld, c->out_old, c->ld, c->h, c->wd, c->ch, c->w, c->b, 0.05f, 117, 1.0f / 0.03f, 20, first, count, c->scratch);
    else ck_dwconv3x3_gelu_u8(c->in, c->ld, c->out_new, c->ld, c->h, c->wd, c->ch, c->w, c->b, 0.05f, 117, 1.0f / 0.03f, 20, first, count, c->scratch);
}
static dw_ctx dw_make(size_t h, size_t w, size_t ch, size_t ld) {
    dw_ctx c = {.h = h, .wd = w, .ch = ch, .ld = ld};
    c.in = alloc(h * w * ld); c.out_new = alloc(h * w * ld); c.out_old = alloc(h * w * ld);
    c.w = alloc(9 * ch * 4); c.b = alloc(ch * 4); c.scratch = alloc(2 * ch * 4);
    for (size_t i = 0; i < h * w * ld; i++) c.in[i] = (uint8_t)(117 + nrand() * 30 < 0 ? 0 : (117 + nrand() * 30 > 255 ? 255 : 117 + nrand() * 30));
    for (size_t i = 0; i < 9 * ch; i++) c.w[i] = nrand() * 0.3f;
    for (size_t i = 0; i < ch; i++) c.b[i] = nrand();
    return c;
}
static void dw_free(dw_ctx *c) { free(c->in); free(c->out_new); free(c->out_old); free(c->w); free(c->b); free(c->scratch); }
static dw_ctx dw_shapes[4];
static void dw_work(void *p, int use_ref) {
    (void)p;
    for (int s = 0; s < 4; s++)
        for (int k = 0; k < 2; k++) dw_run(&dw_shapes[s], use_ref, 0, dw_shapes[s].h);
}
static void dw_compare(dw_ctx *c, const char *what) {
    int maxd = 0; size_t diffs = 0, clobber = 0;
    for (size_t p = 0; p < c->h * c->wd; p++) {
        for (size_t k = 0; k < c->ch; k++) {
            int d = abs((int)c->out_new[p * c->ld + k] - (int)c->out_old[p * c->ld + k]);
            diffs += d != 0; if (d > maxd) maxd = d;
        }
        for (size_t k = c->ch; k < c->ld; k++) clobber += c->out_new[p * c->ld + k] != 0xCD;
    }
    printf("dwconv %-26s %4zux%-4zux%-5zu ld %-5zu: max |Δ| %d (%zu of %zu differ)%s\n", what, c->h, c->wd, c->ch, c->ld, maxd,
           diffs, c->h * c->wd * c->ch, clobber ? "  WROTE PAST CHANNELS" : "");
    if (maxd > 1 || clobber) failures++;
}
static void dwconv_case(int timing) {
    static const size_t shapes[][4] = {{128, 128, 128, 128}, {64, 64, 256, 256}, {32, 32, 640, 640}, {16, 16, 1024, 1024},
                                       {5, 7, 40, 48}, {1, 1, 3, 16}, {2, 3, 20, 32}, {9, 4, 1, 16}};
    for (int s = 0; s < 8; s++) {
        dw_ctx c = dw_make(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3]);
        memset(c.out_new, 0xCD, c.h * c.wd * c.ld);
        dw_run(&c, 1, 0, c.h);
        dw_run(&c, 0, 0, c.h);
        dw_compare(&c, "(whole)");
        // Row bands, as two threads run it.
        memset(c.out_new, 0xCD, c.h * c.wd * c.ld);
        for (size_t y = 0; y < c.h; y += 3) dw_run(&c, 0, y, 3);
        dw_compare(&c, "(bands of 3 rows)");
        if (s < 4 && timing) dw_shapes[s] = c; else dw_free(&c);
    }
    if (timing) {
        time_both("dwconv3x3_gelu_u8 (fwd)", dw_work, NULL);
        for (int s = 0; s < 4; s++) dw_free(&dw_shapes[s]);
    }
}

// ---- bilinear upsampling of 256-channel maps 64², 32², 16² to 128², accumulating.
typedef struct { float *in[3]; float *out_new, *out_old; } rs_ctx;
static const size_t rs_in[3] = {64, 32, 16};
static void rs_work(void *p, int use_ref) {
    rs_ctx *c = p;
    for (int s = 0; s < 3; s++) {
        if (use_ref) ref_resize_bilinear_hwc_rows_f32(c->in[s], rs_in[s], rs_in[s], 256, c->out_old, 128, 128, 0, 128, 1);
        else ck_resize_bilinear_hwc_rows_f32(c->in[s], rs_in[s], rs_in[s], 256, c->out_new, 128, 128, 0, 128, 1);
    }
}
static void resize_check(size_t ih, size_t iw, size_t ch, size_t oh, size_t ow, int acc, size_t band) {
    float *in = alloc(ih * iw * ch * 4), *a = alloc(oh * ow * ch * 4), *b = alloc(oh * ow * ch * 4);
    for (size_t i = 0; i < ih * iw * ch; i++) in[i] = nrand();
    for (size_t i = 0; i < oh * ow * ch; i++) a[i] = b[i] = acc ? nrand() : 0.0f;
    ref_resize_bilinear_hwc_rows_f32(in, ih, iw, ch, a, oh, ow, 0, oh, acc);
    for (size_t y = 0; y < oh; y += band) ck_resize_bilinear_hwc_rows_f32(in, ih, iw, ch, b, oh, ow, y, band, acc);
    double maxabs = 0, maxrel = 0;
    for (size_t i = 0; i < oh * ow * ch; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > maxabs) maxabs = d;
        double r = d / (fabs(a[i]) > 1e-3 ? fabs(a[i]) : 1e-3);
        if (r > maxrel) maxrel = r;
    }
    printf("resize %zux%zux%zu -> %zux%zu acc=%d band %zu: max |Δ| %.2e, max rel %.2e\n", ih, iw, ch, oh, ow, acc, band, maxabs, maxrel);
    if (maxabs > 1e-5) failures++;
    free(in); free(a); free(b);
}
static void resize_case(int timing) {
    resize_check(64, 64, 256, 128, 128, 1, 128);
    resize_check(32, 32, 256, 128, 128, 1, 7);
    resize_check(16, 16, 256, 128, 128, 0, 128);
    resize_check(7, 5, 19, 13, 22, 0, 3);
    resize_check(13, 22, 3, 7, 5, 1, 2);
    resize_check(1, 1, 5, 4, 4, 0, 4);
    resize_check(128, 128, 19, 512, 512, 0, 100);
    resize_check(3, 9, 33, 3, 9, 1, 1);
    if (!timing) return;
    rs_ctx c;
    for (int s = 0; s < 3; s++) {
        c.in[s] = alloc(rs_in[s] * rs_in[s] * 256 * 4);
        for (size_t i = 0; i < rs_in[s] * rs_in[s] * 256; i++) c.in[s][i] = nrand();
    }
    c.out_new = alloc(128 * 128 * 256 * 4); c.out_old = alloc(128 * 128 * 256 * 4);
    time_both("resize x3 -> 128² (fwd)", rs_work, &c);
    for (int s = 0; s < 3; s++) free(c.in[s]);
    free(c.out_new); free(c.out_old);
}

// ---- the folded decoder's sum: a 128² band of 256 channels + 64², 32², 16² maps resized, bias, ReLU, u8.
// The old path is the one the engine took before: ck_resize_bilinear_hwc_rows_f32 per map (accumulating),
// ck_add_bias_rows_f32, ck_relu_f32, ck_quantize_rows_u8, each over the whole band.
typedef struct {
    size_t oh, ow, ch, maps, band_rows;
    size_t heights[3], widths[3];
    float *in[3], *base, *band_old, *band_new, *bias, *scratch;
    uint8_t *q_old, *q_new;
} dec_ctx;
static void dec_work(void *p, int use_ref) {
    dec_ctx *c = p;
    const size_t ld = c->ch + 16;
    for (size_t y = 0; y < c->oh; y += c->band_rows) {
        const size_t rows = c->oh - y < c->band_rows ? c->oh - y : c->band_rows, pixels = rows * c->ow;
        float *band = use_ref ? c->band_old : c->band_new;
        memcpy(band, c->base + y * c->ow * c->ch, pixels * c->ch * 4);
        if (use_ref) {
            for (size_t i = 0; i < c->maps; i++)
                ck_resize_bilinear_hwc_rows_f32(c->in[i], c->heights[i], c->widths[i], c->ch, band - y * c->ow * c->ch, c->oh,
                                                c->ow, y, rows, 1);
            ck_add_bias_rows_f32(band, pixels, c->ch, c->bias);
            ck_relu_f32(band, pixels * c->ch);
            ck_quantize_rows_u8(band, c->ch, c->q_old + y * c->ow * ld, ld, pixels, c->ch, 1 / 0.05f, 3);
        } else {
            const float *maps[3] = {c->in[0], c->in[1], c->in[2]};
            ck_decoder_sum_quantize_u8(band, c->maps, maps, c->heights, c->widths, c->ch, c->oh, c->ow, y, rows, c->bias,
                                       1 / 0.05f, 3, c->q_new, ld, c->scratch);
        }
    }
}
static void decoder_check(dec_ctx *c, int timing) {
    const size_t ld = c->ch + 16, out = c->oh * c->ow;
    size_t scratch = 0;
    for (size_t i = 0; i < c->maps; i++) {
        c->in[i] = alloc(c->heights[i] * c->widths[i] * c->ch * 4);
        for (size_t k = 0; k < c->heights[i] * c->widths[i] * c->ch; k++) c->in[i][k] = nrand();
        scratch += c->widths[i] * c->ch;
    }
    c->scratch = alloc(scratch * 4);
    c->base = alloc(out * c->ch * 4);
    for (size_t k = 0; k < out * c->ch; k++) c->base[k] = nrand();
    c->band_old = alloc(c->band_rows * c->ow * c->ch * 4); c->band_new = alloc(c->band_rows * c->ow * c->ch * 4);
    c->bias = alloc(c->ch * 4);
    for (size_t k = 0; k < c->ch; k++) c->bias[k] = nrand() * 0.5f;
    c->q_old = alloc(out * ld); c->q_new = alloc(out * ld);
    memset(c->q_new, 0xAB, out * ld);
    dec_work(c, 1); dec_work(c, 0);
    int maxd = 0; size_t diffs = 0, clobber = 0;
    for (size_t p = 0; p < out; p++) {
        for (size_t k = 0; k < c->ch; k++) {
            int d = abs((int)c->q_old[p * ld + k] - (int)c->q_new[p * ld + k]);
            diffs += d != 0; if (d > maxd) maxd = d;
        }
        for (size_t k = c->ch; k < ld; k++) clobber += c->q_new[p * ld + k] != 0xAB;
    }
    printf("decoder sum %zux%zux%zu, %zu maps, band %zu: max |Δ| %d (%zu of %zu differ)%s\n", c->oh, c->ow, c->ch, c->maps,
           c->band_rows, maxd, diffs, out * c->ch, clobber ? "  WROTE PAST CHANNELS" : "");
    if (maxd > 1 || clobber) failures++;
    if (timing) time_both("decoder sum + quantize (fwd)", dec_work, c);
    for (size_t i = 0; i < c->maps; i++) free(c->in[i]);
    free(c->scratch); free(c->base); free(c->band_old); free(c->band_new); free(c->bias); free(c->q_old); free(c->q_new);
}
static void decoder_case(int timing) {
    dec_ctx b0 = {.oh = 128, .ow = 128, .ch = 256, .maps = 3, .band_rows = 4, .heights = {64, 32, 16}, .widths = {64, 32, 16}};
    decoder_check(&b0, timing);
    dec_ctx odd = {.oh = 13, .ow = 22, .ch = 19, .maps = 3, .band_rows = 3, .heights = {7, 4, 1}, .widths = {11, 6, 2}};
    decoder_check(&odd, 0);
    dec_ctx one = {.oh = 5, .ow = 3, .ch = 40, .maps = 1, .band_rows = 5, .heights = {5}, .widths = {3}};
    decoder_check(&one, 0);
}

// ---- the attention output: per-head factors, then quantized; must equal the old two steps exactly.
static void heads_case(void) {
    static const size_t shapes[][3] = {{37, 1, 32}, {20, 2, 32}, {9, 5, 32}, {5, 8, 32}, {7, 3, 20}, {4, 2, 5}};
    for (int s = 0; s < 6; s++) {
        const size_t rows = shapes[s][0], heads = shapes[s][1], d = shapes[s][2], c = heads * d, ld = c + 16;
        float *in = alloc(rows * c * 4), *f = alloc(rows * heads * 4);
        uint8_t *a = alloc(rows * ld), *b = alloc(rows * ld);
        for (size_t i = 0; i < rows * c; i++) in[i] = nrand() * 40;
        in[0] = 3e9f; in[1] = -3e9f; // far past the byte range both ways
        for (size_t i = 0; i < rows * heads; i++) f[i] = 1.0f / (1 + (float)(i % 7));
        memset(b, 0xAB, rows * ld);
        ref_scale_heads_quantize_u8(in, c, rows, heads, d, f, a, ld, 1 / 0.07f, 120);
        ck_scale_heads_quantize_u8(in, c, rows, heads, d, f, b, ld, 1 / 0.07f, 120);
        size_t diffs = 0, clobber = 0;
        for (size_t r = 0; r < rows; r++) {
            for (size_t k = 0; k < c; k++) diffs += a[r * ld + k] != b[r * ld + k];
            for (size_t k = c; k < ld; k++) clobber += b[r * ld + k] != 0xAB;
        }
        printf("scale heads + quantize %zux%zux%zu: %zu bytes differ%s\n", rows, heads, d, diffs, clobber ? "  WROTE PAST ROW" : "");
        if (diffs || clobber) failures++;
        free(in); free(f); free(a); free(b);
    }
}

// ---- layer norms: (16384, 32), (4096, 64), (1024, 160), (256, 256); per pass ≈ 5 of each stage's size.
static const size_t ln_shapes[][3] = {{16384, 32, 5}, {4096, 64, 5}, {1024, 160, 5}, {256, 256, 5}};
typedef struct { float *in[4], *outf[4], *g[4], *b[4]; uint8_t *outq[4]; } ln_ctx;
static void lnq_work(void *p, int use_ref) {
    ln_ctx *c = p;
    for (int s = 0; s < 4; s++)
        for (size_t k = 0; k < ln_shapes[s][2]; k++) {
            if (use_ref) ref_layer_norm_quantize_u8(c->in[s], c->outq[s], ln_shapes[s][1], ln_shapes[s][0], ln_shapes[s][1], c->g[s], c->b[s], 1e-6f, 1 / 0.04f, 128);
            else ck_layer_norm_quantize_u8(c->in[s], c->outq[s], ln_shapes[s][1], ln_shapes[s][0], ln_shapes[s][1], c->g[s], c->b[s], 1e-6f, 1 / 0.04f, 128);
        }
}
static void lnf_work(void *p, int use_ref) {
    ln_ctx *c = p;
    for (int s = 0; s < 4; s++)
        for (size_t k = 0; k < ln_shapes[s][2]; k++) {
            if (use_ref) ref_layer_norm_f32(c->in[s], c->outf[s], ln_shapes[s][0], ln_shapes[s][1], c->g[s], c->b[s], 1e-6f);
            else ck_layer_norm_f32(c->in[s], c->outf[s], ln_shapes[s][0], ln_shapes[s][1], c->g[s], c->b[s], 1e-6f);
        }
}
static void ln_case(int timing) {
    static const size_t extra[][2] = {{7, 1}, {5, 3}, {9, 17}, {3, 100}, {2, 1000}};
    for (int s = 0; s < 9; s++) {
        size_t rows = s < 4 ? ln_shapes[s][0] : extra[s - 4][0], ch = s < 4 ? ln_shapes[s][1] : extra[s - 4][1];
        float *in = alloc(rows * ch * 4), *g = alloc(ch * 4), *b = alloc(ch * 4), *fa = alloc(rows * ch * 4), *fb = alloc(rows * ch * 4);
        uint8_t *qa = alloc(rows * (ch + 16)), *qb = alloc(rows * (ch + 16));
        for (size_t i = 0; i < rows * ch; i++) in[i] = nrand() * 3 + (i / ch % 5) * 40.0f; // offsets test the variance
        for (size_t i = 0; i < ch; i++) { g[i] = 1 + nrand() * 0.3f; b[i] = nrand() * 0.2f; }
        ref_layer_norm_quantize_u8(in, qa, ch + 16, rows, ch, g, b, 1e-6f, 1 / 0.04f, 128);
        ck_layer_norm_quantize_u8(in, qb, ch + 16, rows, ch, g, b, 1e-6f, 1 / 0.04f, 128);
        ref_layer_norm_f32(in, fa, rows, ch, g, b, 1e-6f);
        ck_layer_norm_f32(in, fb, rows, ch, g, b, 1e-6f);
        int maxq = 0; size_t qd = 0; double maxf = 0;
        for (size_t r = 0; r < rows; r++)
            for (size_t k = 0; k < ch; k++) {
                int d = abs((int)qa[r * (ch + 16) + k] - (int)qb[r * (ch + 16) + k]);
                qd += d != 0; if (d > maxq) maxq = d;
                // Relative to the output's scale (unit variance before γ, β): the AVX-512 version sums in
                // float, and its mean can sit one ulp from the portable one's (1.5e-5 at a mean of 160).
                double e = fabs((double)fa[r * ch + k] - fb[r * ch + k]) / (fabs(fa[r * ch + k]) > 1 ? fabs(fa[r * ch + k]) : 1);
                if (e > maxf) maxf = e;
            }
        // In place, as the engines call it.
        memcpy(fb, in, rows * ch * 4);
        ck_layer_norm_f32(fb, fb, rows, ch, g, b, 1e-6f);
        double maxip = 0;
        for (size_t i = 0; i < rows * ch; i++) { double e = fabs((double)fa[i] - fb[i]); if (e > maxip) maxip = e; }
        printf("layernorm %5zux%-4zu: quantize_u8 max |Δ| %d (%zu differ); f32 max Δ/max(|y|,1) %.2e, in-place max |Δ| %.2e\n", rows, ch, maxq, qd,
               maxf, maxip);
        if (maxq > 1 || maxf > 1e-4) failures++;
        free(in); free(g); free(b); free(fa); free(fb); free(qa); free(qb);
    }
    if (!timing) return;
    ln_ctx c;
    for (int s = 0; s < 4; s++) {
        size_t n = ln_shapes[s][0] * ln_shapes[s][1];
        c.in[s] = alloc(n * 4); c.outf[s] = alloc(n * 4); c.outq[s] = alloc(n); c.g[s] = alloc(ln_shapes[s][1] * 4); c.b[s] = alloc(ln_shapes[s][1] * 4);
        for (size_t i = 0; i < n; i++) c.in[s][i] = nrand() * 3;
        for (size_t i = 0; i < ln_shapes[s][1]; i++) { c.g[s][i] = 1; c.b[s][i] = 0.1f; }
    }
    time_both("layer_norm_quantize_u8", lnq_work, &c);
    time_both("layer_norm_f32", lnf_work, &c);
    for (int s = 0; s < 4; s++) { free(c.in[s]); free(c.outf[s]); free(c.outq[s]); free(c.g[s]); free(c.b[s]); }
}

// ---- Every hand-vectorised version this CPU runs against the portable version (the definition
// the dispatch falls back to), on odd shapes: u8 outputs within ±1, the exact ones equal, floats
// within 1e-4 of max(|y|, 1). The checks above compare with the old code instead.
static int max_byte_difference(const uint8_t *a, const uint8_t *b, size_t rows, size_t cols, size_t ld) {
    int worst = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            const int d = abs((int)a[r * ld + c] - (int)b[r * ld + c]);
            if (d > worst) worst = d;
        }
    return worst;
}

#if defined(CK_HAVE_X86_KERNELS) || defined(CK_HAVE_NEON_KERNELS)
/// Where the exact GELU crosses a rounding boundary of the output bytes, (m + ½)·step: the float 32 steps either side
/// of each crossing (from x = −8 to 8, on GELU's falling and rising branches), into `bias`; returns how many. The
/// float computation's own crossing lies among them (its erf is within 2.2e-7 of the true one, a few float steps
/// of the output), so some of these values sit within one rounding of a boundary: any rounding done otherwise
/// moves their bytes.
static size_t gelu_boundary_values(float *bias, size_t cap, double step, int zero_point) {
    const double minimum_at = -0.75179164; // GELU's minimum: falling before it, rising after
    size_t n = 0;
    for (int m = -zero_point - 1; m < 255 - zero_point; m++) {
        const double target = (m + 0.5) * step;
        const double branches[2][2] = {{-8.0, minimum_at}, {minimum_at, 8.0}};
        for (int b = 0; b < 2; b++) {
            double lo = branches[b][0], hi = branches[b][1];
            const double glo = 0.5 * lo * (1 + erf(lo / sqrt(2.0))), ghi = 0.5 * hi * (1 + erf(hi / sqrt(2.0)));
            if ((target - glo) * (target - ghi) > 0) continue; // not crossed on this branch
            for (int it = 0; it < 200; it++) {
                const double mid = 0.5 * (lo + hi), g = 0.5 * mid * (1 + erf(mid / sqrt(2.0)));
                if ((g - target) * (glo - target) > 0) lo = mid; else hi = mid;
            }
            float x = (float)lo;
            for (int k = 0; k < 32; k++) x = nextafterf(x, -INFINITY);
            for (int k = 0; k < 64 && n < cap; k++, x = nextafterf(x, INFINITY)) bias[n++] = x;
        }
    }
    return n;
}

/// The GELU and quantization of a vector version of the depthwise convolution (AVX-512 or NEON) against the portable
/// one, bit for bit, apart from the taps: with in_scale 0 every version's value before the GELU is the bias exactly
/// (the AVX-512 version's zero-point correction is 0·zp·Σw too). The biases: the values either side of each byte's
/// rounding boundaries (gelu_boundary_values), then random ones over [−6, 6], and a few special values (huge,
/// infinite, subnormal), 2²⁰ channels of one pixel in all;
/// the last multiply-add done unfused moves bytes (checked, both versions), which the taps' random sums of the other
/// cases never showed. Returns the failures.
static int dwconv_gelu_versions(ck_dwconv3x3_gelu_u8_fn version, const char *name) {
    enum { CH = 1 << 20, ZP = 7 };
    const float step = 0.025f;
    uint8_t *in = alloc(CH), *o_p = alloc(CH), *o_v = alloc(CH);
    float *wt = alloc(9 * (size_t)CH * 4), *bias = alloc((size_t)CH * 4), *scratch = alloc(2 * (size_t)CH * 4);
    const size_t near = gelu_boundary_values(bias, CH, step, ZP);
    for (size_t i = 0; i < CH; i++) in[i] = (uint8_t)(frand() * 256);
    for (size_t i = near; i < CH; i++) bias[i] = -6.0f + 12.0f * frand();
    // and values past the byte range, huge, +∞, −0 and subnormal (not NaN or −∞: GELU makes a NaN of them, which
    // the portable C's conversion to an integer leaves undefined)
    const float special[] = {INFINITY, 3e38f, 1e30f, -1e30f, 300.0f, -300.0f, -0.0f, 1e-40f, -1e-40f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) bias[CH - 1 - i] = special[i];
    for (size_t i = 0; i < 9 * (size_t)CH; i++) wt[i] = nrand();
    ck_dwconv3x3_gelu_u8_portable(in, CH, o_p, CH, 1, 1, CH, wt, bias, 0.0f, 128, 1 / step, ZP, 0, 1, scratch);
    version(in, CH, o_v, CH, 1, 1, CH, wt, bias, 0.0f, 128, 1 / step, ZP, 0, 1, scratch);
    size_t differ = 0;
    for (size_t i = 0; i < CH; i++) {
        if (o_p[i] != o_v[i] && i >= CH - sizeof special / sizeof special[0])
            printf("%s: dwconv+GELU of %g: %d, portable %d\n", name, bias[i], o_v[i], o_p[i]);
        differ += o_p[i] != o_v[i];
    }
    printf("%s: dwconv+GELU, GELU alone on %d values (%zu beside rounding boundaries) vs portable: %zu bytes differ (0 expected)\n",
           name, CH, near, differ);
    free(in); free(o_p); free(o_v); free(wt); free(bias); free(scratch);
    return differ != 0;
}

/// The decoder's sum of a vector version (AVX-512 or NEON) against the portable one, bit for bit: {out height, out width,
/// channels, maps, then each map's height and width}, in bands of rows as the engine's threads call it;
/// the band holds infinities, a NaN and values past the byte range, and most sums land inside it (a
/// single rounding done differently, as an a·b + c·d contracted the other way round, moves some byte in
/// 700 k values). The last case has zero maps and bias and a band of exact ties (k + ½)/4 at 4 steps per
/// unit: round half to even or not shows in every other byte. The portable version adds into the band
/// (with other than 3 maps), so each gets its own copy. Returns the failures.
static int decoder_sum_versions(ck_decoder_sum_quantize_u8_fn version, const char *name) {
    static const size_t dec[][12] = {{64, 64, 256, 3, 32, 32, 16, 16, 8, 8}, {45, 61, 64, 3, 23, 31, 12, 16, 6, 8},
                                     {13, 22, 19, 3, 7, 11, 4, 6, 1, 2},     {5, 3, 40, 1, 5, 3},
                                     {9, 14, 35, 2, 4, 7, 3, 3},             {16, 16, 64, 4, 8, 8, 4, 4, 2, 2, 1, 1},
                                     {7, 5, 80, 3, 14, 10, 3, 2, 1, 1},      {4, 4, 300, 1, 2, 2}};
    const size_t ties = sizeof dec / sizeof dec[0] - 1;
    int failed = 0;
    for (size_t s = 0; s < sizeof dec / sizeof dec[0]; s++) {
        const size_t oh = dec[s][0], ow = dec[s][1], ch = dec[s][2], nm = dec[s][3], ld = ch + 9;
        size_t hs[4], ws[4], scratch_n = 0;
        const float *maps[4];
        float *owned[4];
        for (size_t i = 0; i < nm; i++) hs[i] = dec[s][4 + 2 * i], ws[i] = dec[s][5 + 2 * i];
        for (size_t i = 0; i < nm; i++) {
            owned[i] = alloc(hs[i] * ws[i] * ch * 4);
            for (size_t k = 0; k < hs[i] * ws[i] * ch; k++) owned[i][k] = s == ties ? 0.0f : nrand();
            maps[i] = owned[i];
            scratch_n += ws[i] * ch;
        }
        float *band = alloc(oh * ow * ch * 4), *band_p = alloc(oh * ow * ch * 4), *band_v = alloc(oh * ow * ch * 4);
        float *bias = alloc(ch * 4), *scratch = alloc(scratch_n * 4);
        for (size_t k = 0; k < oh * ow * ch; k++) band[k] = s == ties ? (float)(k % 300) * 0.25f + 0.125f : nrand() + 2.5f;
        if (s != ties) band[1] = INFINITY, band[2] = -INFINITY, band[3] = NAN, band[4] = 3e9f, band[5] = -3e9f, band[6] = -0.0f;
        for (size_t k = 0; k < ch; k++) bias[k] = s == ties ? 0.0f : nrand() * 0.5f;
        const float inv_scale = s == ties ? 4.0f : 1 / 0.02f;
        uint8_t *q_p = alloc(oh * ow * ld), *q_v = alloc(oh * ow * ld);
        memset(q_v, 0xAB, oh * ow * ld);
        const size_t band_rows = 3;
        for (size_t y = 0; y < oh; y += band_rows) {
            const size_t rows = oh - y < band_rows ? oh - y : band_rows;
            memcpy(band_p, band + y * ow * ch, rows * ow * ch * 4);
            memcpy(band_v, band + y * ow * ch, rows * ow * ch * 4);
            ck_decoder_sum_quantize_u8_portable(band_p, nm, maps, hs, ws, ch, oh, ow, y, rows, bias, inv_scale, 7, q_p, ld, scratch);
            version(band_v, nm, maps, hs, ws, ch, oh, ow, y, rows, bias, inv_scale, 7, q_v, ld, scratch);
        }
        const int d = max_byte_difference(q_p, q_v, oh * ow, ch, ld);
        size_t clobber = 0, differ = 0;
        for (size_t p = 0; p < oh * ow; p++) {
            for (size_t k = ch; k < ld; k++) clobber += q_v[p * ld + k] != 0xAB;
            for (size_t k = 0; k < ch; k++) differ += q_v[p * ld + k] != q_p[p * ld + k];
        }
        printf("versions: decoder sum %s %zux%zux%zu, %zu maps vs portable max |Δ| %d (%zu differ)%s (0 expected)\n", name, oh, ow,
               ch, nm, d, differ, clobber ? "  WROTE PAST CHANNELS" : "");
        if (d != 0 || clobber) failed++;
        for (size_t i = 0; i < nm; i++) free(owned[i]);
        free(band); free(band_p); free(band_v); free(bias); free(scratch); free(q_p); free(q_v);
    }
    return failed;
}
#endif

static void versions_case(void) {
#if defined(CK_HAVE_X86_KERNELS)
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    enum { ROWS = 37, COLS = 83, LD = 96 }; // a ragged last group of 16 rows, a masked tail of columns
    float *scores = alloc(ROWS * COLS * 4), *inv_p = alloc(ROWS * 4), *inv_v = alloc(ROWS * 4);
    uint8_t *e_p = alloc(ROWS * LD), *e_v = alloc(ROWS * LD);
    for (size_t i = 0; i < ROWS * COLS; i++) scores[i] = nrand() * 4;
    ck_softmax_exp_u8_portable(scores, COLS, ROWS, COLS, e_p, LD, inv_p);
    if (avx2) {
        ck_softmax_exp_u8_avx2(scores, COLS, ROWS, COLS, e_v, LD, inv_v);
        const int d = max_byte_difference(e_p, e_v, ROWS, COLS, LD);
        printf("versions: softmax avx2 vs portable max |Δe| %d (the same steps: 0 expected)\n", d);
        if (d != 0) failures++;
    }
    if (avx512) {
        ck_softmax_exp_u8_avx512(scores, COLS, ROWS, COLS, e_v, LD, inv_v);
        const int d = max_byte_difference(e_p, e_v, ROWS, COLS, LD);
        printf("versions: softmax avx512 vs portable max |Δe| %d\n", d);
        if (d > 1) failures++;

        float *x = alloc(ROWS * COLS * 4), *g = alloc(COLS * 4), *b = alloc(COLS * 4), *y_p = alloc(ROWS * COLS * 4),
              *y_v = alloc(ROWS * COLS * 4), *factors = alloc(ROWS * 4 * 4);
        for (size_t i = 0; i < ROWS * COLS; i++) x[i] = nrand() * 3 + 5;
        for (size_t i = 0; i < COLS; i++) g[i] = 1 + 0.1f * nrand(), b[i] = 0.1f * nrand();
        for (size_t i = 0; i < ROWS * 4; i++) factors[i] = 0.5f + frand();
        ck_layer_norm_quantize_u8_portable(x, e_p, LD, ROWS, COLS, g, b, 1e-5f, 1 / 0.03f, 120);
        ck_layer_norm_quantize_u8_avx512(x, e_v, LD, ROWS, COLS, g, b, 1e-5f, 1 / 0.03f, 120);
        const int dq = max_byte_difference(e_p, e_v, ROWS, COLS, LD);
        ck_layer_norm_f32_portable(x, y_p, ROWS, COLS, g, b, 1e-5f);
        ck_layer_norm_f32_avx512(x, y_v, ROWS, COLS, g, b, 1e-5f);
        double worst = 0;
        for (size_t i = 0; i < ROWS * COLS; i++) {
            const double rel = fabs(y_p[i] - y_v[i]) / fmax(fabs(y_p[i]), 1);
            if (rel > worst) worst = rel;
        }
        printf("versions: layer norm avx512 vs portable: quantized max |Δ| %d, f32 max rel %.2e\n", dq, worst);
        if (dq > 1 || worst > 1e-4) failures++;
        // 4 heads of 20 channels (COLS − 3 columns are used): exact, the same steps.
        ck_scale_heads_quantize_u8_portable(x, COLS, ROWS, 4, 20, factors, e_p, LD, 1 / 0.05f, 10);
        ck_scale_heads_quantize_u8_avx512(x, COLS, ROWS, 4, 20, factors, e_v, LD, 1 / 0.05f, 10);
        const int dh = max_byte_difference(e_p, e_v, ROWS, 80, LD);
        printf("versions: scale heads avx512 vs portable max |Δ| %d (0 expected)\n", dh);
        if (dh != 0) failures++;
        free(x); free(g); free(b); free(y_p); free(y_v); free(factors);

        enum { H = 9, W = 13, C = 35 };
        uint8_t *in = alloc(H * W * 48), *o_p = alloc(H * W * 48), *o_v = alloc(H * W * 48);
        float *w = alloc(9 * C * 4), *bias = alloc(C * 4), *scratch = alloc(2 * C * 4);
        for (size_t i = 0; i < H * W * 48; i++) in[i] = (uint8_t)(frand() * 256);
        for (size_t i = 0; i < 9 * C; i++) w[i] = nrand() * 0.3f;
        for (size_t i = 0; i < C; i++) bias[i] = nrand() * 0.1f;
        ck_dwconv3x3_gelu_u8_portable(in, 48, o_p, 48, H, W, C, w, bias, 0.05f, 117, 1 / 0.03f, 20, 0, H, scratch);
        ck_dwconv3x3_gelu_u8_avx512(in, 48, o_v, 48, H, W, C, w, bias, 0.05f, 117, 1 / 0.03f, 20, 0, H, scratch);
        const int dd = max_byte_difference(o_p, o_v, H * W, C, 48);
        printf("versions: dwconv+GELU avx512 vs portable max |Δ| %d\n", dd);
        if (dd > 1) failures++;
        failures += dwconv_gelu_versions(ck_dwconv3x3_gelu_u8_avx512, "versions: avx512");
        free(in); free(o_p); free(o_v); free(w); free(bias); free(scratch);
        failures += decoder_sum_versions(ck_decoder_sum_quantize_u8_avx512, "avx512");
    }
    free(scores); free(inv_p); free(inv_v); free(e_p); free(e_v);
#endif
}

#if defined(CK_HAVE_NEON_KERNELS)
/// The step before the GELU of a version that sums its taps as the portable one does (NEON): value = sum·in_scale +
/// bias, one fused multiply-add. One pixel (only the centre tap), 2¹⁸ channels, in_scale 0.0173: each sum is
/// (q − zp)·w rounded once, and each bias is chosen (in double) so that the fused value lands within a few float
/// steps of a byte's rounding boundary (gelu_boundary_values), where a second rounding (the product unfused)
/// moves the byte. Returns the failures.
static int dwconv_scale_bias_versions(ck_dwconv3x3_gelu_u8_fn version, const char *name) {
    enum { CH = 1 << 18, ZP = 7, IN_ZP = 128 };
    const float step = 0.025f, in_scale = 0.0173f;
    uint8_t *in = alloc(CH), *o_p = alloc(CH), *o_v = alloc(CH);
    float *wt = alloc(9 * (size_t)CH * 4), *bias = alloc((size_t)CH * 4), *scratch = alloc(2 * (size_t)CH * 4);
    float *target = alloc((size_t)CH * 4);
    const size_t near = gelu_boundary_values(target, CH, step, ZP);
    for (size_t i = 0; i < 9 * (size_t)CH; i++) wt[i] = nrand();
    for (size_t i = 0; i < CH; i++) {
        in[i] = (uint8_t)(frand() * 256);
        const float sum = ((float)in[i] - (float)IN_ZP) * wt[4 * (size_t)CH + i]; // the centre tap, from +0
        bias[i] = (float)((double)target[i % near] - (double)sum * (double)in_scale);
    }
    ck_dwconv3x3_gelu_u8_portable(in, CH, o_p, CH, 1, 1, CH, wt, bias, in_scale, IN_ZP, 1 / step, ZP, 0, 1, scratch);
    version(in, CH, o_v, CH, 1, 1, CH, wt, bias, in_scale, IN_ZP, 1 / step, ZP, 0, 1, scratch);
    size_t differ = 0;
    for (size_t i = 0; i < CH; i++) differ += o_p[i] != o_v[i];
    printf("%s: dwconv+GELU, sum·in_scale + bias beside rounding boundaries on %d values vs portable: %zu bytes differ (0 expected)\n",
           name, CH, differ);
    free(in); free(o_p); free(o_v); free(wt); free(bias); free(scratch); free(target);
    return differ != 0;
}
#endif

// AArch64: every NEON version against the portable one on odd shapes (ragged channel blocks,
// borders, bands of rows), bit for bit: they reproduce the portable C's roundings as clang
// builds it for AArch64 (fused multiply-adds included; see ck_math_neon.h).
static void neon_versions_case(void) {
#if defined(CK_HAVE_NEON_KERNELS)
    // The dispatch hands out the NEON versions (unless MTLSEG_KERNELS caps the width).
    if (ck_cpu_features_get()->vectors == CK_VECTORS_NEON) {
        const ck_ops *ops = ck_ops_get();
        const int all = ops->softmax_exp_u8 == ck_softmax_exp_u8_neon && ops->dwconv3x3_gelu_u8 == ck_dwconv3x3_gelu_u8_neon &&
                        ops->conv2d_f32 == ck_conv2d_f32_neon && ops->layer_norm_quantize_u8 == ck_layer_norm_quantize_u8_neon &&
                        ops->layer_norm_f32 == ck_layer_norm_f32_neon && ops->decoder_sum_quantize_u8 == ck_decoder_sum_quantize_u8_neon &&
                        ops->quantize_rows_u8 == ck_quantize_rows_u8_neon && ops->scale_heads_quantize_u8 == ck_scale_heads_quantize_u8_neon &&
                        ops->argmax_count_f32 == ck_argmax_count_f32_neon && ops->conv2d_s16 == ck_conv2d_s16_neon &&
                        ops->gate_concat_u8 == ck_gate_concat_u8_neon &&
                        ops->conv2d_s16_fast == 1;
        printf("neon: the dispatch chose %s\n", all ? "every NEON version" : "NOT every NEON version");
        if (!all) failures++;
    }
    static const size_t dw_shapes[][3] = {{9, 13, 35}, {4, 5, 16}, {1, 1, 3}, {7, 3, 128}, {2, 17, 47}, {64, 64, 64},
                                         {3, 2, 600}, {5, 9, 263}, {2, 16, 8}}; // > 256 channels: several chunks
    for (size_t s = 0; s < sizeof dw_shapes / sizeof dw_shapes[0]; s++) {
        const size_t h = dw_shapes[s][0], w = dw_shapes[s][1], ch = dw_shapes[s][2], ld = ch + 5;
        uint8_t *in = alloc(h * w * ld), *o_p = alloc(h * w * ld), *o_v = alloc(h * w * ld);
        float *wt = alloc(9 * ch * 4), *bias = alloc(ch * 4), *scratch = alloc(2 * ch * 4);
        for (size_t i = 0; i < h * w * ld; i++) in[i] = (uint8_t)(frand() * 256);
        for (size_t i = 0; i < 9 * ch; i++) wt[i] = nrand() * 0.3f;
        for (size_t i = 0; i < ch; i++) bias[i] = nrand() * 0.1f;
        const int32_t zp = (int32_t)(s * 61 % 256);
        // Scales that spread the outputs over the whole byte range (not clamped), and 64×64×64
        // values: a single rounding done differently (an unfused a·b + c) moves some byte.
        ck_dwconv3x3_gelu_u8_portable(in, ld, o_p, ld, h, w, ch, wt, bias, 0.002f, zp, 1 / 0.002f, 60, 0, h, scratch);
        // in two bands of rows, as the engine's threads call it
        ck_dwconv3x3_gelu_u8_neon(in, ld, o_v, ld, h, w, ch, wt, bias, 0.002f, zp, 1 / 0.002f, 60, 0, h / 2, scratch);
        ck_dwconv3x3_gelu_u8_neon(in, ld, o_v, ld, h, w, ch, wt, bias, 0.002f, zp, 1 / 0.002f, 60, h / 2, h - h / 2, scratch);
        const int d = max_byte_difference(o_p, o_v, h * w, ch, ld);
        printf("neon: dwconv+GELU %zux%zux%zu vs portable max |Δ| %d (0 expected)\n", h, w, ch, d);
        if (d != 0) failures++;
        free(in); free(o_p); free(o_v); free(wt); free(bias); free(scratch);
    }
    failures += dwconv_gelu_versions(ck_dwconv3x3_gelu_u8_neon, "neon");
    failures += dwconv_scale_bias_versions(ck_dwconv3x3_gelu_u8_neon, "neon");
    // softmax: rows of 64 keys (the model's), and ragged widths; bytes and 1/Σ bit for bit.
    static const size_t sm[][2] = {{301, 64}, {37, 83}, {5, 3}, {9, 17}, {64, 256}};
    for (size_t s = 0; s < sizeof sm / sizeof sm[0]; s++) {
        const size_t rows = sm[s][0], cols = sm[s][1], ld = cols + 3;
        float *x = alloc(rows * ld * 4), *inv_p = alloc(rows * 4), *inv_v = alloc(rows * 4);
        uint8_t *e_p = alloc(rows * ld), *e_v = alloc(rows * ld);
        for (size_t i = 0; i < rows * ld; i++) x[i] = nrand() * 6;
        ck_softmax_exp_u8_portable(x, ld, rows, cols, e_p, ld, inv_p);
        ck_softmax_exp_u8_neon(x, ld, rows, cols, e_v, ld, inv_v);
        const int d = max_byte_difference(e_p, e_v, rows, cols, ld), same_inv = memcmp(inv_p, inv_v, rows * 4) == 0;
        printf("neon: softmax %zux%zu vs portable max |Δe| %d, 1/Σ %s (0 and equal expected)\n", rows, cols, d,
               same_inv ? "equal" : "DIFFERENT");
        if (d != 0 || !same_inv) failures++;
        free(x); free(inv_p); free(inv_v); free(e_p); free(e_v);
    }
    // LayerNorm into bytes and into floats: widths below 8 (summed one by one), multiples of 8 and
    // 16, ragged tails; rows far from zero (the variance of a large mean) and a row past the byte
    // range; floats bit for bit, in place too, as the engines call it.
    static const size_t ln[][2] = {{37, 32}, {9, 64}, {5, 160}, {3, 256}, {7, 1}, {5, 3}, {9, 17}, {3, 100}, {2, 1000}, {4, 8}, {6, 15}, {3, 24}};
    for (size_t s = 0; s < sizeof ln / sizeof ln[0]; s++) {
        const size_t rows = ln[s][0], ch = ln[s][1], ld = ch + 7;
        float *x = alloc(rows * ch * 4), *g = alloc(ch * 4), *b = alloc(ch * 4), *y_p = alloc(rows * ch * 4), *y_v = alloc(rows * ch * 4);
        uint8_t *q_p = alloc(rows * ld), *q_v = alloc(rows * ld);
        for (size_t i = 0; i < rows * ch; i++) x[i] = nrand() * 3 + (float)(i / ch % 5) * 40.0f;
        for (size_t i = 0; i < ch && rows > 1; i++) x[ch + i] = nrand() * 1e6f; // row 1: far past the bytes
        if (rows > 2) x[2 * ch] = NAN;                                          // row 2: all NaN, written as 0
        for (size_t i = 0; i < ch; i++) g[i] = 1 + nrand() * 0.3f, b[i] = nrand() * 0.2f;
        memset(q_v, 0xAB, rows * ld);
        // A scale that spreads the outputs over the whole byte range, so every rounding shows.
        ck_layer_norm_quantize_u8_portable(x, q_p, ld, rows, ch, g, b, 1e-6f, 1 / 0.01f, 128);
        ck_layer_norm_quantize_u8_neon(x, q_v, ld, rows, ch, g, b, 1e-6f, 1 / 0.01f, 128);
        const int dq = max_byte_difference(q_p, q_v, rows, ch, ld);
        size_t clobber = 0;
        for (size_t r = 0; r < rows; r++)
            for (size_t k = ch; k < ld; k++) clobber += q_v[r * ld + k] != 0xAB;
        ck_layer_norm_f32_portable(x, y_p, rows, ch, g, b, 1e-5f);
        ck_layer_norm_f32_neon(x, y_v, rows, ch, g, b, 1e-5f);
        const int same = memcmp(y_p, y_v, rows * ch * 4) == 0;
        memcpy(y_v, x, rows * ch * 4);
        ck_layer_norm_f32_neon(y_v, y_v, rows, ch, g, b, 1e-5f);
        const int same_in_place = memcmp(y_p, y_v, rows * ch * 4) == 0;
        printf("neon: layer norm %zux%zu vs portable: quantized max |Δ| %d%s, f32 %s, in place %s (0 and bit for bit expected)\n", rows,
               ch, dq, clobber ? "  WROTE PAST ROW" : "", same ? "bit for bit" : "DIFFERENT", same_in_place ? "bit for bit" : "DIFFERENT");
        if (dq != 0 || clobber || !same || !same_in_place) failures++;
        free(x); free(g); free(b); free(y_p); free(y_v); free(q_p); free(q_v);
    }
    // Rows quantized: widths around the 16-lane blocks, values over the whole byte range and past
    // it (±3e9, ±∞), a NaN, and exact ties (k + ½ at one step per unit) that only round half to
    // even writes as the portable version does.
    static const size_t qr[][2] = {{37, 64}, {5, 3}, {9, 17}, {4, 256}, {3, 31}, {2, 1000}};
    for (size_t s = 0; s < sizeof qr / sizeof qr[0]; s++) {
        const size_t rows = qr[s][0], ch = qr[s][1], ldi = ch + 3, ld = ch + 5;
        float *x = alloc(rows * ldi * 4);
        uint8_t *q_p = alloc(rows * ld), *q_v = alloc(rows * ld);
        for (size_t i = 0; i < rows * ldi; i++) x[i] = i % 3 == 0 ? (float)(i % 300) - 20.5f : nrand() * 3;
        x[0] = 3e9f; x[1] = -3e9f; x[2] = INFINITY;
        if (rows * ldi > 5) x[3] = -INFINITY, x[4] = NAN;
        memset(q_v, 0xAB, rows * ld);
        ck_quantize_rows_u8_portable(x, ldi, q_p, ld, rows, ch, 1.0f, 12);
        ck_quantize_rows_u8_neon(x, ldi, q_v, ld, rows, ch, 1.0f, 12);
        int d = max_byte_difference(q_p, q_v, rows, ch, ld);
        ck_quantize_rows_u8_portable(x, ldi, q_p, ld, rows, ch, 1 / 0.04f, 128); // a scale that is no power of two
        ck_quantize_rows_u8_neon(x, ldi, q_v, ld, rows, ch, 1 / 0.04f, 128);
        const int d2 = max_byte_difference(q_p, q_v, rows, ch, ld);
        size_t clobber = 0;
        for (size_t r = 0; r < rows; r++)
            for (size_t k = ch; k < ld; k++) clobber += q_v[r * ld + k] != 0xAB;
        printf("neon: quantize rows %zux%zu vs portable max |Δ| %d, %d%s (0 expected)\n", rows, ch, d, d2, clobber ? "  WROTE PAST ROW" : "");
        if (d != 0 || d2 != 0 || clobber) failures++;
        free(x); free(q_p); free(q_v);
    }
    // The attention output's per-head scaling: head widths of the model (32) and ragged ones,
    // values past the byte range and exact ties (f = 1, one step per unit).
    static const size_t sh[][3] = {{37, 1, 32}, {20, 5, 32}, {9, 8, 32}, {7, 3, 20}, {4, 2, 5}, {3, 2, 48}};
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        const size_t rows = sh[s][0], heads = sh[s][1], d = sh[s][2], c = heads * d, ld = c + 16;
        float *x = alloc(rows * c * 4), *f = alloc(rows * heads * 4);
        uint8_t *q_p = alloc(rows * ld), *q_v = alloc(rows * ld);
        for (size_t i = 0; i < rows * c; i++) x[i] = i % 4 == 0 ? (float)(i % 280) - 20.5f : nrand() * 40;
        x[1] = 3e9f; x[2] = -3e9f;
        for (size_t i = 0; i < rows * heads; i++) f[i] = i % 3 == 0 ? 1.0f : 1.0f / (1 + (float)(i % 7));
        memset(q_v, 0xAB, rows * ld);
        ck_scale_heads_quantize_u8_portable(x, c, rows, heads, d, f, q_p, ld, 1.0f, 10);
        ck_scale_heads_quantize_u8_neon(x, c, rows, heads, d, f, q_v, ld, 1.0f, 10);
        int dq = max_byte_difference(q_p, q_v, rows, c, ld);
        ck_scale_heads_quantize_u8_portable(x, c, rows, heads, d, f, q_p, ld, 1 / 0.07f, 120);
        ck_scale_heads_quantize_u8_neon(x, c, rows, heads, d, f, q_v, ld, 1 / 0.07f, 120);
        const int dq2 = max_byte_difference(q_p, q_v, rows, c, ld);
        size_t clobber = 0;
        for (size_t r = 0; r < rows; r++)
            for (size_t k = c; k < ld; k++) clobber += q_v[r * ld + k] != 0xAB;
        printf("neon: scale heads %zux%zux%zu vs portable max |Δ| %d, %d%s (0 expected)\n", rows, heads, d, dq, dq2,
               clobber ? "  WROTE PAST ROW" : "");
        if (dq != 0 || dq2 != 0 || clobber) failures++;
        free(x); free(f); free(q_p); free(q_v);
    }
    // The classifier's argmax and class counts: logits on a coarse grid (so maxima tie and the first
    // must win), NaNs, a pixel all −∞, one all NaN, one −0 before +0, one NaN and −∞, class counts
    // from 1 to 150.
    static const size_t am[][2] = {{301, 19}, {64, 1}, {40, 3}, {50, 4}, {77, 21}, {9, 150}};
    for (size_t s = 0; s < sizeof am / sizeof am[0]; s++) {
        const size_t pixels = am[s][0], k = am[s][1], ld = k + 2;
        float *x = alloc(pixels * ld * 4);
        uint8_t *m_p = alloc(pixels), *m_v = alloc(pixels);
        uint32_t *c_p = alloc(256 * 4), *c_v = alloc(256 * 4);
        for (size_t i = 0; i < pixels * ld; i++) x[i] = roundf(nrand() * 2) * 0.5f;
        for (size_t i = 5; i < pixels * ld; i += 23) x[i] = NAN;
        for (size_t c = 0; c < k; c++) x[1 * ld + c] = -INFINITY, x[2 * ld + c] = NAN, x[3 * ld + c] = -1.0f, x[4 * ld + c] = -INFINITY;
        x[4 * ld] = NAN; // NaN, then −∞ only: nothing beats −∞, class 0
        x[3 * ld + k - 1] = 0.0f, x[3 * ld + (k > 1 ? k - 2 : 0)] = -0.0f;
        ck_argmax_count_f32_portable(x, ld, pixels, k, m_p, c_p);
        ck_argmax_count_f32_neon(x, ld, pixels, k, m_v, c_v);
        const int same = memcmp(m_p, m_v, pixels) == 0 && memcmp(c_p, c_v, 256 * 4) == 0;
        printf("neon: argmax + counts %zu pixels x %zu classes vs portable: %s\n", pixels, k, same ? "the same" : "DIFFERENT");
        if (!same) failures++;
        free(x); free(m_p); free(m_v); free(c_p); free(c_v);
    }
    failures += decoder_sum_versions(ck_decoder_sum_quantize_u8_neon, "neon");
    // MTLSegFormer's cross-task gates: {pixels, channels, gates}: the demo's width with 1 and 2 gates, widths that are
    // no multiple of 64, 16 or 4 (the dot products' partial blocks, the bytes' scalar tail). The maps are mostly ReLU
    // outputs with −0, a NaN, infinities and values far past the byte range among them. Rows are padded past the
    // channels (not written). The last case shows any rounding done differently in the gate sums: large products
    // whose sum cancels across lanes (w_other·F_j is −w_self·F_t, one channel on), so that s is −20 plus the rounding
    // errors of the sum (about 10⁻³), and an output grid so fine that a = e^s·(1 + that error) spreads G over the
    // byte range: a product fused into its addition, or lanes summed in another order, moves many bytes.
    static const size_t gc[][3] = {{37, 256, 1}, {19, 256, 2}, {9, 100, 1}, {5, 7, 3}, {17, 64, 1}, {3, 301, 2}, {1, 2, 1}, {6, 256, 1}};
    for (size_t s = 0; s < sizeof gc / sizeof gc[0]; s++) {
        const size_t pixels = gc[s][0], ch = gc[s][1], gates = gc[s][2], ld = (gates + 1) * ch + 5, ldo = 2 * ch + 3;
        const int cancel = s == sizeof gc / sizeof gc[0] - 1;
        float *maps = alloc(pixels * ld * 4), *ws = alloc(gates * ch * 4), *wo = alloc(gates * ch * 4), *bias = alloc(gates * 4);
        float *scratch = alloc(CK_GATE_CHUNK * gates * 4);
        for (size_t i = 0; i < pixels * ld; i++) {
            const float v = nrand() * 2 + 0.5f;
            maps[i] = cancel ? fabsf(v) * 50 : v > 0 ? v : (i % 3 ? 0.0f : -0.0f);
        }
        if (pixels * ld > 40 && !cancel) maps[7] = NAN, maps[11] = INFINITY, maps[13] = -INFINITY, maps[17] = 3e9f, maps[19] = -3e9f;
        for (size_t i = 0; i < gates * ch; i++) ws[i] = nrand() * (cancel ? 10 : 0.15f), wo[i] = nrand() * 0.15f;
        if (cancel) // F_j and w_other: F_t and −w_self turned by one channel, so that each lane's sum stays large
            for (size_t c = 0; c < ch; c++) {
                wo[c] = -ws[(c + 1) % ch];
                for (size_t p = 0; p < pixels; p++) maps[p * ld + ch + c] = maps[p * ld + (c + 1) % ch];
            }
        for (size_t g = 0; g < gates; g++) bias[g] = cancel ? -20.0f : nrand() * 0.5f;
        const float inv_scale = cancel ? 255 / (400 * expf(-20)) : 255 / 7.0f;
        const float *others[3], *self_rows[3], *other_rows[3];
        for (size_t g = 0; g < gates; g++) others[g] = maps + (g + 1) * ch, self_rows[g] = ws + g * ch, other_rows[g] = wo + g * ch;
        uint8_t *q_p = alloc(pixels * ldo), *q_v = alloc(pixels * ldo);
        memset(q_v, 0xAB, pixels * ldo);
        ck_gate_concat_u8_portable(maps, others, ld, pixels, ch, gates, self_rows, other_rows, bias, inv_scale, 4, q_p, ldo, scratch);
        ck_gate_concat_u8_neon(maps, others, ld, pixels, ch, gates, self_rows, other_rows, bias, inv_scale, 4, q_v, ldo, scratch);
        const int d = max_byte_difference(q_p, q_v, pixels, 2 * ch, ldo);
        size_t clobber = 0;
        for (size_t p = 0; p < pixels; p++)
            for (size_t k = 2 * ch; k < ldo; k++) clobber += q_v[p * ldo + k] != 0xAB;
        size_t spread = 0; // G's distinct bytes of the last case: the grid must spread them (else it shows nothing)
        for (size_t v = 0; cancel && v < 256; v++)
            for (size_t i = 0; i < pixels * ch; i++)
                if (q_p[i / ch * ldo + ch + i % ch] == v) { spread++; break; }
        printf("neon: gate concat %zu pixels x %zu channels, %zu gates%s vs portable max |Δ| %d%s (0 expected)\n", pixels, ch, gates,
               cancel ? ", cancelling sums" : "", d, clobber ? "  WROTE PAST ROW" : "");
        if (cancel && spread < 100) printf("neon: gate concat: the cancelling case's bytes do not spread (%zu values)\n", spread), failures++;
        if (d != 0 || clobber) failures++;
        free(maps); free(ws); free(wo); free(bias); free(scratch); free(q_p); free(q_v);
    }
    // fp32 convolution: {height, width, channels, out channels, kernel, stride, padding, channels last, bias}
    static const size_t cv[][9] = {{37, 45, 3, 32, 7, 4, 3, 0, 1}, {23, 19, 3, 35, 7, 4, 3, 0, 0}, {17, 15, 32, 64, 3, 2, 1, 1, 1},
                                   {9, 30, 20, 19, 3, 2, 1, 1, 1},  {12, 12, 64, 160, 3, 2, 1, 1, 0}, {8, 9, 5, 7, 3, 1, 1, 0, 1}};
    for (size_t s = 0; s < sizeof cv / sizeof cv[0]; s++) {
        const size_t h = cv[s][0], w = cv[s][1], c = cv[s][2], co = cv[s][3], k = cv[s][4], st = cv[s][5], pad = cv[s][6];
        const int last = (int)cv[s][7];
        const size_t oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1;
        float *x = alloc(h * w * c * 4), *wt = alloc(co * k * k * c * 4), *b = alloc(co * 4);
        float *packed = alloc(ck_conv2d_f32_packed_size(co, k, c) * 4), *y_p = alloc(oh * ow * co * 4), *y_v = alloc(oh * ow * co * 4);
        for (size_t i = 0; i < h * w * c; i++) x[i] = nrand();
        for (size_t i = 0; i < co * k * k * c; i++) wt[i] = nrand() * 0.2f;
        for (size_t i = 0; i < co; i++) b[i] = nrand() * 0.1f;
        ck_conv2d_f32_pack(wt, co, k, c, packed);
        const size_t rs = last ? w * c : w, ps = last ? c : 1, cs = last ? 1 : h * w;
        const float *bias = cv[s][8] ? b : NULL;
        ck_conv2d_f32_portable(x, h, w, c, rs, ps, cs, packed, co, k, st, pad, bias, y_p, oh, ow, 0, oh);
        ck_conv2d_f32_neon(x, h, w, c, rs, ps, cs, packed, co, k, st, pad, bias, y_v, oh, ow, 0, oh / 2);
        ck_conv2d_f32_neon(x, h, w, c, rs, ps, cs, packed, co, k, st, pad, bias, y_v, oh, ow, oh / 2, oh - oh / 2);
        const int same = memcmp(y_p, y_v, oh * ow * co * 4) == 0;
        printf("neon: conv f32 %zux%zux%zu→%zu k%zu s%zu %s vs portable: %s\n", h, w, c, co, k, st,
               last ? "channels last" : "channels first", same ? "bit for bit" : "DIFFERENT");
        if (!same) failures++;
        free(x); free(wt); free(b); free(packed); free(y_p); free(y_v);
    }
    // 16-bit convolution (exact integer sums): {height, width, channels, out channels, kernel, stride, bias}; odd
    // channel counts (a padding channel), out channels not a multiple of 16 or 32, odd output widths (a last
    // tile of one pixel), 1×1 (the decoder's wide inputs) and the embeddings' geometries.
    static const size_t cs16[][7] = {{37, 45, 3, 32, 7, 4, 1}, {17, 15, 32, 64, 3, 2, 1}, {9, 30, 20, 19, 3, 2, 0},
                                     {12, 12, 64, 160, 3, 2, 1}, {16, 16, 160, 256, 1, 1, 0}, {7, 5, 33, 40, 1, 1, 1},
                                     {8, 9, 5, 7, 3, 1, 1}};
    for (size_t s = 0; s < sizeof cs16 / sizeof cs16[0]; s++) {
        const size_t h = cs16[s][0], w = cs16[s][1], c = cs16[s][2], co = cs16[s][3], k = cs16[s][4], st = cs16[s][5];
        const size_t pad = k / 2, oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1;
        const size_t mw = ck_conv2d_s16_map_width(w, k, st, pad), mh = ck_conv2d_s16_map_height(h, pad);
        const size_t cp = ck_conv2d_s16_channel_stride(c);
        float *x = alloc(h * w * c * 4), *wt = alloc(co * k * k * c * 4), *b = alloc(co * 4), *scales = alloc(co * 4);
        int16_t *map = alloc(mh * mw * cp * 2), *packed = alloc(ck_conv2d_s16_packed_size(co, k, c) * 2);
        float *y_p = alloc(oh * ow * co * 4), *y_v = alloc(oh * ow * co * 4);
        for (size_t i = 0; i < h * w * c; i++) x[i] = nrand();
        for (size_t i = 0; i < co * k * k * c; i++) wt[i] = nrand() * 0.2f;
        for (size_t i = 0; i < co; i++) b[i] = nrand() * 0.1f;
        ck_conv2d_s16_pack(wt, co, k, c, packed, scales);
        ck_zero_s16_map_border(map, h, w, c, mw, pad);
        // Full-scale inputs: the largest sums the weight bound allows.
        ck_quantize_s16_map_portable(x, w, c, w * c, c, 1, CK_S16_INPUT_MAX / ck_max_abs_f32(x, h * w * c), map, mw, pad, 0, h);
        const float *bias = cs16[s][6] ? b : NULL;
        ck_conv2d_s16_portable(map, mw, c, packed, co, k, st, scales, bias, y_p, ow, 0, oh);
        ck_conv2d_s16_neon(map, mw, c, packed, co, k, st, scales, bias, y_v, ow, 0, oh / 2);
        ck_conv2d_s16_neon(map, mw, c, packed, co, k, st, scales, bias, y_v, ow, oh / 2, oh - oh / 2);
        const int same = memcmp(y_p, y_v, oh * ow * co * 4) == 0;
        printf("neon: conv s16 %zux%zux%zu→%zu k%zu s%zu vs portable: %s\n", h, w, c, co, k, st, same ? "bit for bit" : "DIFFERENT");
        if (!same) failures++;
        free(x); free(wt); free(b); free(scales); free(map); free(packed); free(y_p); free(y_v);
    }
#endif
}

int main(int argc, char **argv) {
    int timing = 1;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check")) timing = 0;
        else if (!strncmp(argv[i], "--only=", 7)) only = argv[i] + 7;
        else reps = atoi(argv[i]);
    }
    if (!only || strstr(only, "softmax")) softmax_case(timing);
    if (!only || strstr(only, "dwconv")) dwconv_case(timing);
    if (!only || strstr(only, "resize")) resize_case(timing);
    if (!only || strstr(only, "ln")) ln_case(timing);
    if (!only || strstr(only, "decoder")) decoder_case(timing);
    if (!only || strstr(only, "heads")) heads_case();
    if (!only || strstr(only, "versions")) versions_case();
    if (!only || strstr(only, "neon")) neon_versions_case();
    if (failures) { printf("ops_bench: %d checks FAILED\n", failures); return 1; }
    printf("ops_bench: all checks passed\n");
    return 0;
}
