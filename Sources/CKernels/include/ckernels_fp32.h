#ifndef CKERNELS_FP32_H
#define CKERNELS_FP32_H
// Portable fp32 kernels for the parts of the network that are not matrix
// products (those go to BLAS). Tensors are channels-last: element (y, x, c) of
// an h×w×C map is at (y*w + x)*C + c, which is also HF's token order.
// Built at -O3 in every configuration so that the compiler vectorises the loops.
#include <stddef.h>
#include <stdint.h>

/// LayerNorm over the last dimension of `rows` rows of `channels` values (biased
/// variance, as PyTorch). `out` may equal `in`.
void ck_layer_norm_f32(const float *in, float *out, size_t rows, size_t channels,
                       const float *gamma, const float *beta, float eps);

/// Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)), in place.
void ck_gelu_erf_f32(float *x, size_t n);

/// max(x, 0), in place.
void ck_relu_f32(float *x, size_t n);

/// x[r][c] += bias[c] over `rows` rows.
void ck_add_bias_rows_f32(float *x, size_t rows, size_t channels, const float *bias);

/// Row-wise softmax of `rows`×`cols` values after multiplying them by `scale`,
/// in place (max subtracted first, as PyTorch does for stability).
void ck_softmax_rows_f32(float *x, size_t rows, size_t cols, float scale);

/// 3×3 depthwise convolution, stride 1, zero padding 1, with bias.
/// `weight` is [9][channels], tap-major (PyTorch's [C, 1, 3, 3] transposed), so
/// the inner loop over channels reads it contiguously.
void ck_dwconv3x3_hwc_f32(const float *in, float *out, size_t height, size_t width,
                          size_t channels, const float *weight, const float *bias);

/// Gathers the patches of a k×k convolution (stride s, zero padding p) of a
/// channels-last input into rows of [k][k][C] values, one row per output pixel,
/// for a GEMM against weights repacked to [out][k][k][C]. Only output rows
/// first_row ..< first_row + row_count are gathered, from cols' first row on.
void ck_im2col_hwc_f32(const float *in, size_t height, size_t width, size_t channels,
                       size_t kernel, size_t stride, size_t padding,
                       size_t out_height, size_t out_width, float *cols,
                       size_t first_row, size_t row_count);

/// Bilinear resize of a channels-last map with align_corners=False semantics
/// (PyTorch's F.interpolate(mode="bilinear")). With `accumulate` non-zero the
/// result is added to `out` instead of overwriting it.
void ck_resize_bilinear_hwc_f32(const float *in, size_t in_height, size_t in_width,
                                size_t channels, float *out, size_t out_height,
                                size_t out_width, int accumulate);

/// The same for output rows first_row ..< first_row + row_count only (threads split the rows).
void ck_resize_bilinear_hwc_rows_f32(const float *in, size_t in_height, size_t in_width, size_t channels,
                                     float *out, size_t out_height, size_t out_width,
                                     size_t first_row, size_t row_count, int accumulate);

/// Channels-last (h×w×C) to channels-first (C×h×w).
void ck_hwc_to_chw_f32(const float *in, float *out, size_t height, size_t width, size_t channels);

/// Channels-first (C×h×w) to channels-last (h×w×C).
void ck_chw_to_hwc_f32(const float *in, float *out, size_t height, size_t width, size_t channels);

/// The cross-task gate of MTLSegFormer: for each of `pixels` pixels,
/// a = sigmoid(self_score + other_score + bias), then out[p][:] += a · other[p][:].
void ck_gate_accumulate_f32(const float *self_score, const float *other_score, float bias,
                            const float *other, float *out, size_t pixels, size_t channels);

/// Pixels [first, first + pixels) of channels-first planes (`plane` pixels each) from channels-last rows
/// of `channels` values (row stride ldi): one band of a classifier's logits into the [K][h][w] map.
void ck_hwc_rows_to_chw_f32(const float *in, size_t ldi, float *out, size_t plane, size_t first, size_t pixels,
                            size_t channels);

/// Per pixel (rows of `classes` logits, row stride ldi) the first class of largest logit into mask[p],
/// and counts[class] += 1 for it. classes ≤ 256. A pixel whose logits are all NaN gets class 0.
void ck_argmax_count_f32(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask, uint32_t *counts);

/// The smallest and largest of n values (calibration statistics).
void ck_min_max_f32(const float *x, size_t n, float *min_out, float *max_out);

/// Adds each of n values to `counts`, a histogram of `bins` equal bins over
/// [lo, hi]; values outside go to the first or last bin.
void ck_histogram_f32(const float *x, size_t n, float lo, float hi, size_t bins, uint64_t *counts);

/// sums[c] += Σ_r x[r][c] over `rows` rows of `channels` values (calibration means).
void ck_column_sums_f32(const float *x, size_t rows, size_t channels, double *sums);

/// out[m][n] = a[m][k] · w[n][k]ᵀ, plainly (small products for calibration reports, not the engines).
void ck_matmul_transposed_f32(const float *a, size_t m, size_t k, const float *w, size_t n, float *out);

/// max |x| over n floats (0 for n = 0).
float ck_max_abs_f32(const float *x, size_t n);


/// PyTorch's bilinear taps (align_corners=False, source coordinates clamped at 0) for resizing one
/// dimension from in_size to out_size: output i = in[index0[i]]·weight0[i] + in[index1[i]]·weight1[i].
void ck_linear_taps_f32(size_t in_size, size_t out_size, uint32_t *index0, uint32_t *index1, float *weight0, float *weight1);

/// Resizes each of `rows` rows of in_width values to out_width values with the taps of
/// ck_linear_taps_f32 (the horizontal half of a bilinear resize).
void ck_resample_rows_f32(const float *in, size_t rows, size_t in_width, float *out, size_t out_width,
                          const uint32_t *x0, const uint32_t *x1, const float *wx0, const float *wx1);

/// The vertical half and the argmax: `rows` holds `classes` planes of in_height × out_width values
/// (ck_resample_rows_f32's output); mask rows first_row ..< first_row + row_count get, per pixel, the
/// class whose two blended rows give the largest value (the first maximum wins, as torch.argmax).
/// `best` is scratch of out_width floats.
void ck_blend_argmax_rows_f32(const float *rows, size_t classes, size_t in_height, size_t out_width,
                              const uint32_t *y0, const uint32_t *y1, const float *wy0, const float *wy1,
                              uint8_t *mask, size_t first_row, size_t row_count, float *best);

#endif
