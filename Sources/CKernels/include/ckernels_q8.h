#ifndef CKERNELS_Q8_H
#define CKERNELS_Q8_H
// The fp32 ↔ u8 boundaries of the int8 engine, each fused with the operation
// next to it so that no full-size intermediate is written. Activations are
// asymmetric u8: q = clamp(round_even(x · inv_scale) + zero_point, 0, 255),
// x ≈ (q − zero_point) · scale. Maps are channels-last; u8 rows have a stride
// (`ld`) of at least their channel count, so the GEMM can read whole k-groups.
#include <stddef.h>
#include <stdint.h>

/// Quantizes `rows` rows of `channels` floats (row stride ldi) into u8 rows of stride ldo.
void ck_quantize_rows_u8(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                         float inv_scale, int32_t zero_point);

/// LayerNorm of each row (as ck_layer_norm_f32), written quantized.
void ck_layer_norm_quantize_u8(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                               const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point);

/// Gathers k×k patches (stride s, padding p) of a quantized channels-last map
/// (row stride ldi) into rows of [k][k][C] bytes (row stride ldc). Padding
/// takes `pad_value`, the zero point, which is how 0.0 is written. Only output
/// rows first_row ..< first_row + row_count are gathered, each to its own place
/// in `cols` (threads split the rows of one buffer).
void ck_im2col_hwc_u8(const uint8_t *in, size_t ldi, size_t height, size_t width, size_t channels,
                      size_t kernel, size_t stride, size_t padding, size_t out_height, size_t out_width,
                      uint8_t pad_value, uint8_t *cols, size_t ldc, size_t first_row, size_t row_count);

/// Mix-FFN's middle: 3×3 depthwise conv (stride 1, zero padding) of a quantized
/// map, + bias, exact GELU, quantized again. `weight` is [9][channels] fp32.
/// `scratch` holds 2·channels floats.
void ck_dwconv3x3_gelu_u8(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                          size_t channels, const float *weight, const float *bias,
                          float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                          size_t first_row, size_t row_count, float *scratch);

/// The most maps ck_decoder_sum_quantize_u8 takes (the encoder stages after the first).
#define CK_DECODER_MAPS_MAX 8

/// The folded all-MLP decoder's sum, for output rows first_row ..< first_row + row_count:
/// F = ReLU(band + Σ_i resize(maps[i]) + bias), written quantized (row stride ldo).
/// `band` holds those rows of the full-resolution term ([row_count·out_width][channels]) and
/// is used as scratch. Each map i (at most CK_DECODER_MAPS_MAX) is [heights[i]][widths[i]][channels],
/// resized bilinearly (align_corners=False, as PyTorch: blended vertically, then horizontally)
/// to out_height×out_width. `scratch` holds Σ_i widths[i]·channels floats. Done pixel by pixel,
/// a pixel's channels stay in L1 from the sum to the byte written.
void ck_decoder_sum_quantize_u8(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                int32_t zero_point, uint8_t *out, size_t ldo, float *scratch);

/// Lanes of the gate dot products' fixed summation order (see ck_gate_concat_u8).
#define CK_GATE_DOT_LANES 64
/// Pixels ck_gate_concat_u8 takes at a time; its scratch holds CK_GATE_CHUNK·gates floats.
#define CK_GATE_CHUNK 8

/// MTLSegFormer's cross-task gates and the combine conv's input, for `pixels` pixels of task t. own = F_t and
/// others[g] = F_j of gate g are rows of `channels` floats (row stride ld, the same for all); per pixel p:
///   s_g = (w_self[g]·F_t[p] + w_other[g]·others[g][p]) + bias[g],   a_g = 1 / (1 + exp(−s_g))
///   G = Σ_g a_g·others[g][p], in gate order
///   out[p][0 ..< channels] = q(F_t[p]), out[p][channels ..< 2·channels] = q(G)   (row stride ldo)
/// with q the u8 quantization above; gates ≥ 1. The two dot products of s_g are one sum in CK_GATE_DOT_LANES
/// lanes: lane l takes first the products w_self[i]·F_t[i], then w_other[i]·F_j[i], of the i ≡ l mod lanes, in
/// increasing i; then halves are added (lane l + lane l + half) down to one lane, and the bias last. Every
/// product and sum is rounded on its own (no fused multiply-add) and exp is ck_math.h's, so every version
/// writes the same bytes. `scratch` holds CK_GATE_CHUNK·gates floats.
void ck_gate_concat_u8(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels, size_t gates,
                       const float *const *self_weights, const float *const *other_weights, const float *bias, float inv_scale,
                       int32_t zero_point, uint8_t *out, size_t ldo, float *scratch);

/// The portable version, always (tests: it must equal ck_gate_concat_u8 bit for bit).
void ck_gate_concat_u8_portable(const float *own, const float *const *others, size_t ld, size_t pixels, size_t channels,
                                size_t gates, const float *const *self_weights, const float *const *other_weights,
                                const float *bias, float inv_scale, int32_t zero_point, uint8_t *out, size_t ldo,
                                float *scratch);

/// x = (q(x) − zero_point)·scale in place: what quantizing on the u8 grid does to x.
void ck_fake_quantize_f32(float *x, size_t n, float scale, int32_t zero_point);

/// x = (q − zero_point)·scale for `rows` rows of `channels` bytes (row strides ldi, ldo).
void ck_dequantize_rows_u8(const uint8_t *in, size_t ldi, float *out, size_t ldo, size_t rows, size_t channels,
                           float scale, int32_t zero_point);

/// y[c] += x[c] for n values.
void ck_add_rows_f32(float *y, const float *x, size_t n);

#endif
