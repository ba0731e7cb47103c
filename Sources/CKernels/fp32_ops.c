#include "ckernels_fp32.h"
#include "ck_math.h"
#include "ops_dispatch.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// The portable version; x86 with AVX-512 runs layer_norm_avx512.c's, AArch64 layer_norm_neon.c's.
CK_VECTOR_CLONES
void ck_layer_norm_f32_portable(const float *in, float *out, size_t rows, size_t channels,
                                    const float *gamma, const float *beta, float eps) {
    // Sums may be reordered (so they vectorise); they run in double, which keeps
    // them as accurate as PyTorch's for any channel count.
#pragma clang fp reassociate(on)
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        float *y = out + r * channels;
        double sum = 0;
        for (size_t c = 0; c < channels; c++) sum += x[c];
        const double mean = sum / (double)channels;
        double sq = 0;
        for (size_t c = 0; c < channels; c++) {
            const double d = x[c] - mean;
            sq += d * d;
        }
        const float inv = (float)(1.0 / sqrt(sq / (double)channels + eps));
        const float m = (float)mean;
        for (size_t c = 0; c < channels; c++) y[c] = (x[c] - m) * inv * gamma[c] + beta[c];
    }
}

CK_VECTOR_CLONES
void ck_gelu_erf_f32(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = ck_gelu(x[i]);
}

CK_VECTOR_CLONES
void ck_relu_f32(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

CK_VECTOR_CLONES
void ck_add_bias_rows_f32(float *x, size_t rows, size_t channels, const float *bias) {
    for (size_t r = 0; r < rows; r++) {
        float *y = x + r * channels;
        for (size_t c = 0; c < channels; c++) y[c] += bias[c];
    }
}

CK_VECTOR_CLONES
void ck_softmax_rows_f32(float *x, size_t rows, size_t cols, float scale) {
    // The max and the sum may be reordered so that both loops vectorise.
#pragma clang fp reassociate(on)
    for (size_t r = 0; r < rows; r++) {
        float *y = x + r * cols;
        float max = -INFINITY;
        for (size_t c = 0; c < cols; c++) max = y[c] > max ? y[c] : max;
        const float shift = max * scale;
        for (size_t c = 0; c < cols; c++) y[c] = ck_expf(y[c] * scale - shift);
        float sum = 0.0f;
        for (size_t c = 0; c < cols; c++) sum += y[c];
        const float inv = 1.0f / sum;
        for (size_t c = 0; c < cols; c++) y[c] *= inv;
    }
}

CK_VECTOR_CLONES
void ck_dwconv3x3_hwc_f32(const float *in, float *out, size_t height, size_t width,
                          size_t channels, const float *weight, const float *bias) {
    for (size_t y = 0; y < height; y++) {
        for (size_t x = 0; x < width; x++) {
            float *o = out + (y * width + x) * channels;
            for (size_t c = 0; c < channels; c++) o[c] = bias[c];
            for (int dy = -1; dy <= 1; dy++) {
                const long sy = (long)y + dy;
                if (sy < 0 || sy >= (long)height) continue;
                for (int dx = -1; dx <= 1; dx++) {
                    const long sx = (long)x + dx;
                    if (sx < 0 || sx >= (long)width) continue;
                    const float *i = in + ((size_t)sy * width + (size_t)sx) * channels;
                    const size_t tap = (size_t)((dy + 1) * 3 + (dx + 1));
                    const float *w = weight + tap * channels;
                    for (size_t c = 0; c < channels; c++) o[c] += i[c] * w[c];
                }
            }
        }
    }
}

void ck_im2col_hwc_f32(const float *in, size_t height, size_t width, size_t channels,
                       size_t kernel, size_t stride, size_t padding,
                       size_t out_height, size_t out_width, float *cols,
                       size_t first_row, size_t row_count) {
    const size_t row = kernel * kernel * channels;
    const size_t end_row = first_row + row_count < out_height ? first_row + row_count : out_height;
    for (size_t oy = first_row; oy < end_row; oy++) {
        for (size_t ox = 0; ox < out_width; ox++) {
            float *dst = cols + ((oy - first_row) * out_width + ox) * row;
            for (size_t ky = 0; ky < kernel; ky++) {
                const long sy = (long)(oy * stride + ky) - (long)padding;
                for (size_t kx = 0; kx < kernel; kx++) {
                    const long sx = (long)(ox * stride + kx) - (long)padding;
                    float *d = dst + (ky * kernel + kx) * channels;
                    if (sy < 0 || sy >= (long)height || sx < 0 || sx >= (long)width) {
                        memset(d, 0, channels * sizeof(float));
                    } else {
                        memcpy(d, in + ((size_t)sy * width + (size_t)sx) * channels,
                               channels * sizeof(float));
                    }
                }
            }
        }
    }
}

CK_VECTOR_CLONES
void ck_resize_bilinear_hwc_rows_f32(const float *in, size_t in_height, size_t in_width, size_t channels,
                                     float *out, size_t out_height, size_t out_width,
                                     size_t first_row, size_t row_count, int accumulate) {
    const size_t end_row = first_row + row_count < out_height ? first_row + row_count : out_height;
    for (size_t y = first_row; y < end_row; y++) {
        size_t y0, y1;
        float wy;
        ck_bilinear_taps(out_height, in_height, y, &y0, &y1, &wy);
        for (size_t x = 0; x < out_width; x++) {
            size_t x0, x1;
            float wx;
            ck_bilinear_taps(out_width, in_width, x, &x0, &x1, &wx);
            const float *a = in + (y0 * in_width + x0) * channels;
            const float *b = in + (y0 * in_width + x1) * channels;
            const float *c = in + (y1 * in_width + x0) * channels;
            const float *d = in + (y1 * in_width + x1) * channels;
            const float w00 = (1.0f - wy) * (1.0f - wx), w01 = (1.0f - wy) * wx;
            const float w10 = wy * (1.0f - wx), w11 = wy * wx;
            float *o = out + (y * out_width + x) * channels;
            if (accumulate) {
                for (size_t k = 0; k < channels; k++) o[k] += w00 * a[k] + w01 * b[k] + w10 * c[k] + w11 * d[k];
            } else {
                for (size_t k = 0; k < channels; k++) o[k] = w00 * a[k] + w01 * b[k] + w10 * c[k] + w11 * d[k];
            }
        }
    }
}

void ck_resize_bilinear_hwc_f32(const float *in, size_t in_height, size_t in_width,
                                size_t channels, float *out, size_t out_height,
                                size_t out_width, int accumulate) {
    ck_resize_bilinear_hwc_rows_f32(in, in_height, in_width, channels, out, out_height, out_width, 0, out_height, accumulate);
}

void ck_hwc_to_chw_f32(const float *in, float *out, size_t height, size_t width, size_t channels) {
    const size_t plane = height * width;
    for (size_t p = 0; p < plane; p++)
        for (size_t c = 0; c < channels; c++) out[c * plane + p] = in[p * channels + c];
}

void ck_chw_to_hwc_f32(const float *in, float *out, size_t height, size_t width, size_t channels) {
    const size_t plane = height * width;
    for (size_t p = 0; p < plane; p++)
        for (size_t c = 0; c < channels; c++) out[p * channels + c] = in[c * plane + p];
}

CK_VECTOR_CLONES
void ck_gate_accumulate_f32(const float *self_score, const float *other_score, float bias,
                            const float *other, float *out, size_t pixels, size_t channels) {
    for (size_t p = 0; p < pixels; p++) {
        const float a = 1.0f / (1.0f + ck_expf(-(self_score[p] + other_score[p] + bias)));
        const float *src = other + p * channels;
        float *dst = out + p * channels;
        for (size_t c = 0; c < channels; c++) dst[c] += a * src[c];
    }
}

// In 16 lanes: as one `largest = a > largest ? a : largest` chain it does not vectorise.
CK_VECTOR_CLONES
float ck_max_abs_f32(const float *x, size_t n) {
    float lanes[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) {
            const float a = fabsf(x[i + k]);
            lanes[k] = a > lanes[k] ? a : lanes[k];
        }
    for (; i < n; i++) lanes[0] = fabsf(x[i]) > lanes[0] ? fabsf(x[i]) : lanes[0];
    float largest = lanes[0];
    for (int k = 1; k < 16; k++) largest = lanes[k] > largest ? lanes[k] : largest;
    return largest;
}

CK_VECTOR_CLONES
void ck_min_max_f32(const float *x, size_t n, float *min_out, float *max_out) {
#pragma clang fp reassociate(on)
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
    }
    *min_out = lo;
    *max_out = hi;
}

void ck_histogram_f32(const float *x, size_t n, float lo, float hi, size_t bins, uint64_t *counts) {
    const float per = hi > lo ? (float)bins / (hi - lo) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float f = (x[i] - lo) * per;
        f = f < 0.0f ? 0.0f : f;
        size_t b = (size_t)f;
        counts[b < bins ? b : bins - 1]++;
    }
}

CK_VECTOR_CLONES
void ck_column_sums_f32(const float *x, size_t rows, size_t channels, double *sums) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < channels; c++) sums[c] += x[r * channels + c];
}

CK_VECTOR_CLONES
void ck_matmul_transposed_f32(const float *a, size_t m, size_t k, const float *w, size_t n, float *out) {
#pragma clang fp reassociate(on)
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float sum = 0.0f;
            for (size_t t = 0; t < k; t++) sum += a[i * k + t] * w[j * k + t];
            out[i * n + j] = sum;
        }
}
