#include "ckernels_q8.h"
#include "ck_math.h"
#include "ops_dispatch.h"

#include <math.h>
#include <string.h>

// The portable version; AArch64 runs quantize_rows_u8_neon.c's, which writes the same bytes.
CK_VECTOR_CLONES
void ck_quantize_rows_u8_portable(const float *in, size_t ldi, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                         float inv_scale, int32_t zero_point) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * ldi;
        uint8_t *q = out + r * ldo;
        for (size_t c = 0; c < channels; c++) q[c] = ck_quantize_u8(x[c], inv_scale, zero_point);
    }
}

// The portable version; x86 with AVX-512 runs layer_norm_avx512.c's, AArch64 layer_norm_neon.c's.
CK_VECTOR_CLONES
void ck_layer_norm_quantize_u8_portable(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                            const float *gamma, const float *beta, float eps, float inv_scale,
                                            int32_t zero_point) {
#pragma clang fp reassociate(on)
    for (size_t r = 0; r < rows; r++) {
        const float *x = in + r * channels;
        uint8_t *q = out + r * ldo;
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
        for (size_t c = 0; c < channels; c++) q[c] = ck_quantize_u8((x[c] - m) * inv * gamma[c] + beta[c], inv_scale, zero_point);
    }
}

// The portable version; x86 with AVX-512 runs decoder_sum_quantize_u8_avx512.c's, AArch64
// decoder_sum_quantize_u8_neon.c's, which write the same bytes.
CK_VECTOR_CLONES
void ck_decoder_sum_quantize_u8_portable(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                int32_t zero_point, uint8_t *out, size_t ldo, float *scratch) {
    const size_t end_row = first_row + row_count < out_height ? first_row + row_count : out_height;
    for (size_t y = first_row; y < end_row; y++) {
        // Each map's two source rows blended vertically for this output row, then blended
        // horizontally per pixel: two taps per pixel instead of four.
        float *blended[CK_DECODER_MAPS_MAX];
        float *next = scratch;
        for (size_t i = 0; i < map_count; i++) {
            size_t y0, y1;
            float wy;
            ck_bilinear_taps(out_height, heights[i], y, &y0, &y1, &wy);
            const float *r0 = maps[i] + y0 * widths[i] * channels, *r1 = maps[i] + y1 * widths[i] * channels;
            const float w0 = 1.0f - wy;
            blended[i] = next;
            for (size_t k = 0; k < widths[i] * channels; k++) next[k] = w0 * r0[k] + wy * r1[k];
            next += widths[i] * channels;
        }
        for (size_t x = 0; x < out_width; x++) {
            float *o = band + ((y - first_row) * out_width + x) * channels;
            const float *a[CK_DECODER_MAPS_MAX], *b[CK_DECODER_MAPS_MAX];
            float w0[CK_DECODER_MAPS_MAX], w1[CK_DECODER_MAPS_MAX];
            ck_decoder_column_taps(map_count, blended, widths, channels, out_width, x, a, b, w0, w1);
            uint8_t *q = out + (y * out_width + x) * ldo;
            if (map_count == 3) {
                // The four-stage encoders' case, in one pass: each channel's sum stays in a register
                // (the same additions, in the same order, as the loop below).
                for (size_t k = 0; k < channels; k++) {
                    float v = o[k];
                    v += w0[0] * a[0][k] + w1[0] * b[0][k];
                    v += w0[1] * a[1][k] + w1[1] * b[1][k];
                    v += w0[2] * a[2][k] + w1[2] * b[2][k];
                    v += bias[k];
                    q[k] = ck_quantize_u8(v > 0.0f ? v : 0.0f, inv_scale, zero_point);
                }
                continue;
            }
            for (size_t i = 0; i < map_count; i++)
                for (size_t k = 0; k < channels; k++) o[k] += w0[i] * a[i][k] + w1[i] * b[i][k];
            for (size_t k = 0; k < channels; k++) {
                const float v = o[k] + bias[k];
                q[k] = ck_quantize_u8(v > 0.0f ? v : 0.0f, inv_scale, zero_point);
            }
        }
    }
}

void ck_im2col_hwc_u8(const uint8_t *in, size_t ldi, size_t height, size_t width, size_t channels,
                      size_t kernel, size_t stride, size_t padding, size_t out_height, size_t out_width,
                      uint8_t pad_value, uint8_t *cols, size_t ldc, size_t first_row, size_t row_count) {
    const size_t end_row = first_row + row_count < out_height ? first_row + row_count : out_height;
    for (size_t oy = first_row; oy < end_row; oy++) {
        for (size_t ox = 0; ox < out_width; ox++) {
            uint8_t *dst = cols + (oy * out_width + ox) * ldc;
            for (size_t ky = 0; ky < kernel; ky++) {
                const long sy = (long)(oy * stride + ky) - (long)padding;
                for (size_t kx = 0; kx < kernel; kx++) {
                    const long sx = (long)(ox * stride + kx) - (long)padding;
                    uint8_t *d = dst + (ky * kernel + kx) * channels;
                    if (sy < 0 || sy >= (long)height || sx < 0 || sx >= (long)width) {
                        memset(d, pad_value, channels);
                    } else {
                        memcpy(d, in + ((size_t)sy * width + (size_t)sx) * ldi, channels);
                    }
                }
            }
        }
    }
}

// The portable version (dwconv3x3_gelu_u8_avx512.c takes the same steps). Each tap is
// converted and accumulated in one pass, and interior pixels skip the bounds checks.
CK_VECTOR_CLONES
void ck_dwconv3x3_gelu_u8_portable(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                       size_t channels, const float *weight, const float *bias,
                                       float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                                       size_t first_row, size_t row_count, float *scratch) {
    float *acc = scratch;
    const float zp = (float)in_zero_point, half_scale = 0.5f * out_inv_scale;
    for (size_t y = first_row; y < first_row + row_count && y < height; y++) {
        for (size_t x = 0; x < width; x++) {
            const int interior = y > 0 && y + 1 < height && x > 0 && x + 1 < width;
            for (size_t c = 0; c < channels; c++) acc[c] = 0.0f;
            for (int dy = -1; dy <= 1; dy++) {
                const long sy = (long)y + dy;
                if (!interior && (sy < 0 || sy >= (long)height)) continue;
                for (int dx = -1; dx <= 1; dx++) {
                    const long sx = (long)x + dx;
                    if (!interior && (sx < 0 || sx >= (long)width)) continue;
                    const uint8_t *q = in + ((size_t)sy * width + (size_t)sx) * ldi;
                    const float *w = weight + (size_t)((dy + 1) * 3 + (dx + 1)) * channels;
                    for (size_t c = 0; c < channels; c++) acc[c] += ((float)q[c] - zp) * w[c];
                }
            }
            uint8_t *o = out + (y * width + x) * ldo;
            for (size_t c = 0; c < channels; c++) // ck_gelu_scaled's result is already scaled: quantized with scale 1
                o[c] = ck_quantize_u8(ck_gelu_scaled(acc[c] * in_scale + bias[c], half_scale), 1.0f, out_zero_point);
        }
    }
}

CK_VECTOR_CLONES
void ck_fake_quantize_f32(float *x, size_t n, float scale, int32_t zero_point) {
    const float inv = 1.0f / scale;
    for (size_t i = 0; i < n; i++) x[i] = ((float)ck_quantize_u8(x[i], inv, zero_point) - (float)zero_point) * scale;
}

CK_VECTOR_CLONES
void ck_dequantize_rows_u8(const uint8_t *in, size_t ldi, float *out, size_t ldo, size_t rows, size_t channels,
                           float scale, int32_t zero_point) {
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < channels; c++) out[r * ldo + c] = ((float)in[r * ldi + c] - (float)zero_point) * scale;
}

CK_VECTOR_CLONES
void ck_add_rows_f32(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}
