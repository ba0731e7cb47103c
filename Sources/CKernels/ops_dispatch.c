// Per operation, its versions by vector width; ck_ops_get() takes from each table the entry
// for the width cpu_features.c allows, once. The public entry points below call through it.
#include "ops_dispatch.h"

#include "ckernels_attention_q8.h"
#include "ckernels_conv.h"
#include "ckernels_conv_s16.h"
#include "ckernels_fp32.h"
#include "ckernels_q8.h"

#include <pthread.h>

// Every table has an entry for every width (a narrower version where no wider one exists).
// On AArch64 the tables hold the portable version at CK_VECTORS_NEON too; choose_once then puts
// the NEON versions in (ops_neon below), so that a table without a NEON version still works there.
#if defined(CK_HAVE_X86_KERNELS)
#define BY_WIDTH(portable, avx2, avx512) {[CK_VECTORS_PORTABLE] = portable, [CK_VECTORS_AVX2] = avx2, [CK_VECTORS_AVX512] = avx512}
#elif defined(__aarch64__)
#define BY_WIDTH(portable, avx2, avx512) {[CK_VECTORS_PORTABLE] = portable, [CK_VECTORS_NEON] = portable}
#else
#define BY_WIDTH(portable, avx2, avx512) {[CK_VECTORS_PORTABLE] = portable}
#endif

static const ck_softmax_exp_u8_fn softmax_exp_u8[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_softmax_exp_u8_portable, ck_softmax_exp_u8_avx2, ck_softmax_exp_u8_avx512);
static const ck_quantize_rows_u8_fn quantize_rows_u8[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_quantize_rows_u8_portable, ck_quantize_rows_u8_portable, ck_quantize_rows_u8_portable);
static const ck_gate_concat_u8_fn gate_concat_u8[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_gate_concat_u8_portable, ck_gate_concat_u8_portable, ck_gate_concat_u8_avx512);
static const ck_scale_heads_quantize_u8_fn scale_heads_quantize_u8[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_scale_heads_quantize_u8_portable, ck_scale_heads_quantize_u8_portable, ck_scale_heads_quantize_u8_avx512);
static const ck_argmax_count_f32_fn argmax_count_f32[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_argmax_count_f32_portable, ck_argmax_count_f32_portable, ck_argmax_count_f32_portable);
static const ck_layer_norm_quantize_u8_fn layer_norm_quantize_u8[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_layer_norm_quantize_u8_portable, ck_layer_norm_quantize_u8_portable, ck_layer_norm_quantize_u8_avx512);
static const ck_layer_norm_f32_fn layer_norm_f32[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_layer_norm_f32_portable, ck_layer_norm_f32_portable, ck_layer_norm_f32_avx512);
static const ck_decoder_sum_quantize_u8_fn decoder_sum_quantize_u8[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_decoder_sum_quantize_u8_portable, ck_decoder_sum_quantize_u8_portable, ck_decoder_sum_quantize_u8_avx512);
static const ck_dwconv3x3_gelu_u8_fn dwconv3x3_gelu_u8[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_dwconv3x3_gelu_u8_portable, ck_dwconv3x3_gelu_u8_portable, ck_dwconv3x3_gelu_u8_avx512);
static const ck_quantize_s16_map_fn quantize_s16_map[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_quantize_s16_map_portable, ck_quantize_s16_map_portable, ck_quantize_s16_map_avx512);
static const ck_conv2d_f32_fn conv2d_f32[CK_VECTORS_COUNT] =
    BY_WIDTH(ck_conv2d_f32_portable, ck_conv2d_f32_portable, ck_conv2d_f32_avx512);

static ck_ops ops;

#if defined(CK_HAVE_NEON_KERNELS)
/// The AArch64 NEON versions (<operation>_<type>_neon.c), over the portable ones the tables gave.
static void ops_neon(void) {
    ops.dwconv3x3_gelu_u8 = ck_dwconv3x3_gelu_u8_neon;
    ops.conv2d_f32 = ck_conv2d_f32_neon;
    ops.conv2d_s16 = ck_conv2d_s16_neon;
    ops.conv2d_s16_fast = 1;
    ops.softmax_exp_u8 = ck_softmax_exp_u8_neon;
    ops.quantize_rows_u8 = ck_quantize_rows_u8_neon;
    ops.gate_concat_u8 = ck_gate_concat_u8_neon;
    ops.argmax_count_f32 = ck_argmax_count_f32_neon;
    ops.scale_heads_quantize_u8 = ck_scale_heads_quantize_u8_neon;
    ops.layer_norm_quantize_u8 = ck_layer_norm_quantize_u8_neon;
    ops.layer_norm_f32 = ck_layer_norm_f32_neon;
    ops.decoder_sum_quantize_u8 = ck_decoder_sum_quantize_u8_neon;
}
#endif

static void choose_once(void) {
    const ck_cpu_features *cpu = ck_cpu_features_get();
    const ck_vectors v = cpu->vectors;
    ops.softmax_exp_u8 = softmax_exp_u8[v];
    ops.quantize_rows_u8 = quantize_rows_u8[v];
    ops.gate_concat_u8 = gate_concat_u8[v];
    ops.scale_heads_quantize_u8 = scale_heads_quantize_u8[v];
    ops.argmax_count_f32 = argmax_count_f32[v];
    ops.layer_norm_quantize_u8 = layer_norm_quantize_u8[v];
    ops.layer_norm_f32 = layer_norm_f32[v];
    ops.decoder_sum_quantize_u8 = decoder_sum_quantize_u8[v];
    ops.dwconv3x3_gelu_u8 = dwconv3x3_gelu_u8[v];
    ops.quantize_s16_map = quantize_s16_map[v];
    ops.conv2d_f32 = conv2d_f32[v];
    // The 16-bit convolution's fast version needs AVX-512 VNNI's 16-bit dot products: it runs
    // where the GEMMs run their AVX-512 VNNI set and the other operations AVX-512.
    ops.conv2d_s16 = ck_conv2d_s16_portable;
#if defined(CK_HAVE_X86_KERNELS)
    if (v == CK_VECTORS_AVX512 && cpu->gemm == CK_TIER_AVX512VNNI) {
        ops.conv2d_s16 = ck_conv2d_s16_avx512vnni;
        ops.conv2d_s16_fast = 2;
    }
#endif
#if defined(CK_HAVE_NEON_KERNELS)
    if (v == CK_VECTORS_NEON) ops_neon();
#endif
}

const ck_ops *ck_ops_get(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, choose_once);
    return &ops;
}

// ---- The public entry points (declared in include/ckernels_*.h).

void ck_softmax_exp_u8(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo, float *inv_sums) {
    ck_ops_get()->softmax_exp_u8(scores, lds, rows, cols, out, ldo, inv_sums);
}

void ck_quantize_rows_u8(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels, float inv_scale,
                         int32_t zero_point) {
    ck_ops_get()->quantize_rows_u8(in, ldi, out, ldo, rows, channels, inv_scale, zero_point);
}

void ck_gate_concat_u8(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels, size_t gates,
                       const float *const *self_weights, const float *const *other_weights, const float *bias, float inv_scale,
                       int32_t zero_point, uint8_t *out, size_t ldo, float *scratch) {
    ck_ops_get()->gate_concat_u8(own, others, ld, pixels, channels, gates, self_weights, other_weights, bias, inv_scale,
                                 zero_point, out, ldo, scratch);
}

void ck_scale_heads_quantize_u8(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim, const float *factors,
                                uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point) {
    ck_ops_get()->scale_heads_quantize_u8(in, ldi, rows, heads, head_dim, factors, out, ldo, inv_scale, zero_point);
}

void ck_argmax_count_f32(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask, uint32_t *counts) {
    ck_ops_get()->argmax_count_f32(in, ldi, pixels, classes, mask, counts);
}

void ck_layer_norm_quantize_u8(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels, const float *gamma,
                               const float *beta, float eps, float inv_scale, int32_t zero_point) {
    ck_ops_get()->layer_norm_quantize_u8(in, out, ldo, rows, channels, gamma, beta, eps, inv_scale, zero_point);
}

void ck_layer_norm_f32(const float *in, float *out, size_t rows, size_t channels, const float *gamma, const float *beta,
                       float eps) {
    ck_ops_get()->layer_norm_f32(in, out, rows, channels, gamma, beta, eps);
}

void ck_decoder_sum_quantize_u8(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                int32_t zero_point, uint8_t *out, size_t ldo, float *scratch) {
    ck_ops_get()->decoder_sum_quantize_u8(band, map_count, maps, heights, widths, channels, out_height, out_width, first_row,
                                          row_count, bias, inv_scale, zero_point, out, ldo, scratch);
}

void ck_dwconv3x3_gelu_u8(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                          size_t channels, const float *weight, const float *bias, float in_scale, int32_t in_zero_point,
                          float out_inv_scale, int32_t out_zero_point, size_t first_row, size_t row_count, float *scratch) {
    ck_ops_get()->dwconv3x3_gelu_u8(in, ldi, out, ldo, height, width, channels, weight, bias, in_scale, in_zero_point,
                                    out_inv_scale, out_zero_point, first_row, row_count, scratch);
}

void ck_quantize_s16_map(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                         size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                         size_t first_row, size_t row_count) {
    ck_ops_get()->quantize_s16_map(in, width, channels, row_stride, pixel_stride, channel_stride, inv_scale, out, map_width,
                                   padding, first_row, row_count);
}

int ck_conv2d_s16_fast(void) { return ck_ops_get()->conv2d_s16_fast; }

void ck_conv2d_s16(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed, size_t out_channels,
                   size_t kernel, size_t stride, const float *scales, const float *bias, float *out, size_t out_width,
                   size_t first_row, size_t row_count) {
    ck_ops_get()->conv2d_s16(in, map_width, channels, packed, out_channels, kernel, stride, scales, bias, out, out_width,
                             first_row, row_count);
}

void ck_conv2d_f32(const float *in, size_t height, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                   size_t channel_stride, const float *packed, size_t out_channels, size_t kernel, size_t stride,
                   size_t padding, const float *bias, float *out, size_t out_height, size_t out_width,
                   size_t first_row, size_t row_count) {
    ck_ops_get()->conv2d_f32(in, height, width, channels, row_stride, pixel_stride, channel_stride, packed, out_channels,
                             kernel, stride, padding, bias, out, out_height, out_width, first_row, row_count);
}
