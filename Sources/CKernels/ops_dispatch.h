#ifndef CKERNELS_OPS_DISPATCH_H
#define CKERNELS_OPS_DISPATCH_H
// The operations other than the GEMMs that have hand-vectorised versions: each version's
// declaration, and the table of the versions this process runs (ops_dispatch.c fills it once
// from cpu_features.h). A version lives in <operation>_<type>_<isa>.c; the portable C (in the
// files of the public headers) is the fallback, and all that non-x86 builds have.
#include "cpu_features.h"

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#define CK_HAVE_X86_KERNELS 1
#endif
#if defined(__aarch64__)
#define CK_HAVE_NEON_KERNELS 1
#endif

typedef void (*ck_softmax_exp_u8_fn)(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                                     float *inv_sums);
typedef void (*ck_quantize_rows_u8_fn)(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                       float inv_scale, int32_t zero_point);
typedef void (*ck_gate_concat_u8_fn)(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                                     size_t gates, const float *const *self_weights, const float *const *other_weights,
                                     const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                                     float *scratch);
typedef void (*ck_argmax_count_f32_fn)(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask,
                                       uint32_t *counts);
typedef void (*ck_scale_heads_quantize_u8_fn)(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                              const float *factors, uint8_t *out, size_t ldo, float inv_scale,
                                              int32_t zero_point);
typedef void (*ck_layer_norm_quantize_u8_fn)(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                             const float *gamma, const float *beta, float eps, float inv_scale,
                                             int32_t zero_point);
typedef void (*ck_layer_norm_f32_fn)(const float *in, float *out, size_t rows, size_t channels, const float *gamma,
                                     const float *beta, float eps);
typedef void (*ck_decoder_sum_quantize_u8_fn)(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                              const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                              size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                              int32_t zero_point, uint8_t *out, size_t ldo, float *scratch);
typedef void (*ck_dwconv3x3_gelu_u8_fn)(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                        size_t channels, const float *weight, const float *bias, float in_scale,
                                        int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point, size_t first_row,
                                        size_t row_count, float *scratch);
typedef void (*ck_quantize_s16_map_fn)(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                                       size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                                       size_t first_row, size_t row_count);
typedef void (*ck_conv2d_s16_fn)(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed,
                                 size_t out_channels, size_t kernel, size_t stride, const float *scales, const float *bias,
                                 float *out, size_t out_width, size_t first_row, size_t row_count);
typedef void (*ck_conv2d_f32_fn)(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                                 size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                                 size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                                 size_t out_height, size_t out_width, size_t first_row, size_t row_count);

/// The version of each operation this process runs.
typedef struct {
    ck_softmax_exp_u8_fn softmax_exp_u8;
    ck_quantize_rows_u8_fn quantize_rows_u8;
    ck_gate_concat_u8_fn gate_concat_u8;
    ck_scale_heads_quantize_u8_fn scale_heads_quantize_u8;
    ck_argmax_count_f32_fn argmax_count_f32;
    ck_layer_norm_quantize_u8_fn layer_norm_quantize_u8;
    ck_layer_norm_f32_fn layer_norm_f32;
    ck_decoder_sum_quantize_u8_fn decoder_sum_quantize_u8;
    ck_dwconv3x3_gelu_u8_fn dwconv3x3_gelu_u8;
    ck_quantize_s16_map_fn quantize_s16_map;
    ck_conv2d_s16_fn conv2d_s16;
    /// What ck_conv2d_s16_fast reports: 0 the portable loop, 1 a SIMD kernel as fast per multiply-accumulate as
    /// the fp32 convolution's (NEON), 2 a faster one (AVX-512 VNNI).
    int conv2d_s16_fast;
    ck_conv2d_f32_fn conv2d_f32;
} ck_ops;

/// Chosen once (the first call, from any thread); never NULL.
const ck_ops *ck_ops_get(void);

// The portable versions (their public headers declare those that tests call directly).
void ck_softmax_exp_u8_portable(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                                float *inv_sums);
void ck_quantize_rows_u8_portable(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                  float inv_scale, int32_t zero_point);
void ck_argmax_count_f32_portable(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask, uint32_t *counts);
void ck_scale_heads_quantize_u8_portable(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                         const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point);
void ck_layer_norm_quantize_u8_portable(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                        const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point);
void ck_layer_norm_f32_portable(const float *in, float *out, size_t rows, size_t channels, const float *gamma,
                                const float *beta, float eps);
void ck_decoder_sum_quantize_u8_portable(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                         const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                         size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                         int32_t zero_point, uint8_t *out, size_t ldo, float *scratch);
void ck_dwconv3x3_gelu_u8_portable(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                   size_t channels, const float *weight, const float *bias, float in_scale,
                                   int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point, size_t first_row,
                                   size_t row_count, float *scratch);

#if defined(CK_HAVE_X86_KERNELS)
// softmax_exp_u8_avx512.c, softmax_exp_u8_avx2.c
void ck_softmax_exp_u8_avx512(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                              float *inv_sums);
void ck_softmax_exp_u8_avx2(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                            float *inv_sums);
// gate_concat_u8_avx512.c
void ck_gate_concat_u8_avx512(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                              size_t gates, const float *const *self_weights, const float *const *other_weights,
                              const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                              float *scratch);
// scale_heads_quantize_u8_avx512.c
void ck_scale_heads_quantize_u8_avx512(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                       const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point);
// layer_norm_avx512.c
void ck_layer_norm_quantize_u8_avx512(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                      const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point);
void ck_layer_norm_f32_avx512(const float *in, float *out, size_t rows, size_t channels, const float *gamma, const float *beta,
                              float eps);
// decoder_sum_quantize_u8_avx512.c (reads the band, does not write it)
void ck_decoder_sum_quantize_u8_avx512(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                       const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                       size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                       int32_t zero_point, uint8_t *out, size_t ldo, float *scratch);
// dwconv3x3_gelu_u8_avx512.c (needs no scratch)
void ck_dwconv3x3_gelu_u8_avx512(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                 size_t channels, const float *weight, const float *bias, float in_scale,
                                 int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point, size_t first_row,
                                 size_t row_count, float *scratch);
// quantize_s16_map_avx512.c (the portable version for layouts it has no fast path for)
void ck_quantize_s16_map_avx512(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                                size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                                size_t first_row, size_t row_count);
// conv_s16_avx512vnni.c
void ck_conv2d_s16_avx512vnni(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed,
                              size_t out_channels, size_t kernel, size_t stride, const float *scales, const float *bias,
                              float *out, size_t out_width, size_t first_row, size_t row_count);
// conv_f32_avx512.c
void ck_conv2d_f32_avx512(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                          size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                          size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                          size_t out_height, size_t out_width, size_t first_row, size_t row_count);
#endif

#if defined(CK_HAVE_NEON_KERNELS)
// dwconv3x3_gelu_u8_neon.c (uses scratch only where it hands a grid it does not take, a zero point outside 0–255, to the portable version)
void ck_dwconv3x3_gelu_u8_neon(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                               size_t channels, const float *weight, const float *bias, float in_scale,
                               int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point, size_t first_row,
                               size_t row_count, float *scratch);
// gate_concat_u8_neon.c
void ck_gate_concat_u8_neon(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                            size_t gates, const float *const *self_weights, const float *const *other_weights,
                            const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                            float *scratch);
// softmax_exp_u8_neon.c
void ck_softmax_exp_u8_neon(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                            float *inv_sums);
// quantize_rows_u8_neon.c
void ck_quantize_rows_u8_neon(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                              float inv_scale, int32_t zero_point);
// scale_heads_quantize_u8_neon.c
void ck_scale_heads_quantize_u8_neon(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                     const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point);
// argmax_count_f32_neon.c
void ck_argmax_count_f32_neon(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask, uint32_t *counts);
// layer_norm_neon.c
void ck_layer_norm_quantize_u8_neon(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                    const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point);
void ck_layer_norm_f32_neon(const float *in, float *out, size_t rows, size_t channels, const float *gamma, const float *beta,
                            float eps);
// decoder_sum_quantize_u8_neon.c (reads the band, does not write it)
void ck_decoder_sum_quantize_u8_neon(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                     const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                     size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                     int32_t zero_point, uint8_t *out, size_t ldo, float *scratch);
// conv_f32_neon.c
void ck_conv2d_s16_neon(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed, size_t out_channels,
                        size_t kernel, size_t stride, const float *scales, const float *bias, float *out, size_t out_width,
                        size_t first_row, size_t row_count);
void ck_conv2d_f32_neon(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                        size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                        size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                        size_t out_height, size_t out_width, size_t first_row, size_t row_count);
#endif

#endif
