// The kernels as they were before the rewrite (verbatim, renamed ref_*), kept as the
// reference that ops_bench.c times and checks the current ones against.
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#define CK_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CK_VECTOR_CLONES
#endif

static inline float round_even(float v) { return (v + 12582912.0f) - 12582912.0f; }

// exp without a libm call (see fp32_ops.c), accurate far beyond the u8 output.
static inline float attention_expf(float x) {
    x = x < -87.0f ? -87.0f : x;
    const float n = round_even(x * 1.44269504088896341f);
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { uint32_t i; float f; } scale = { .i = (uint32_t)((int32_t)n + 127) << 23 };
    return p * scale.f;
}

CK_VECTOR_CLONES
void ref_softmax_exp_u8(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo, float *inv_sums) {
#pragma clang fp reassociate(on)
    for (size_t r = 0; r < rows; r++) {
        const float *s = scores + r * lds;
        uint8_t *q = out + r * ldo;
        float max = -INFINITY;
        for (size_t c = 0; c < cols; c++) max = s[c] > max ? s[c] : max;
        int32_t sum = 0;
        for (size_t c = 0; c < cols; c++) {
            const int32_t v = (int32_t)round_even(attention_expf(s[c] - max) * 255.0f);
            q[c] = (uint8_t)v;
            sum += v;
        }
        inv_sums[r] = 1.0f / (float)sum;  // the maximum writes 255, so sum ≥ 255
    }
}

static inline uint8_t quantize(float x, float inv_scale, int32_t zero_point) {
    float v = x * inv_scale;
    v = (v + 12582912.0f) - 12582912.0f;
    v += (float)zero_point;
    v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
    return (uint8_t)(int32_t)v;
}

CK_VECTOR_CLONES
void ref_layer_norm_quantize_u8(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                               const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point) {
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
        for (size_t c = 0; c < channels; c++) q[c] = quantize((x[c] - m) * inv * gamma[c] + beta[c], inv_scale, zero_point);
    }
}

static inline float q8_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { uint32_t i; float f; } scale = { .i = (uint32_t)((int32_t)n + 127) << 23 };
    return p * scale.f;
}
static inline float q8_gelu(float x) {
    const float z = x * 0.70710678118654752440f;
    const float a = z < 0.0f ? -z : z;
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float erf = 1.0f - p * t * q8_expf(-a * a);
    erf = z < 0.0f ? -erf : erf;
    return 0.5f * x * (1.0f + erf);
}

CK_VECTOR_CLONES
void ref_dwconv3x3_gelu_u8(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                          size_t channels, const float *weight, const float *bias,
                          float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                          size_t first_row, size_t row_count, float *scratch) {
    float *acc = scratch;
    float *centred = scratch + channels;
    const float zp = (float)in_zero_point;
    for (size_t y = first_row; y < first_row + row_count && y < height; y++) {
        for (size_t x = 0; x < width; x++) {
            for (size_t c = 0; c < channels; c++) acc[c] = 0.0f;
            for (int dy = -1; dy <= 1; dy++) {
                const long sy = (long)y + dy;
                if (sy < 0 || sy >= (long)height) continue;
                for (int dx = -1; dx <= 1; dx++) {
                    const long sx = (long)x + dx;
                    if (sx < 0 || sx >= (long)width) continue;
                    const uint8_t *q = in + ((size_t)sy * width + (size_t)sx) * ldi;
                    const float *w = weight + (size_t)((dy + 1) * 3 + (dx + 1)) * channels;
                    for (size_t c = 0; c < channels; c++) centred[c] = (float)q[c] - zp;
                    for (size_t c = 0; c < channels; c++) acc[c] += centred[c] * w[c];
                }
            }
            uint8_t *o = out + (y * width + x) * ldo;
            for (size_t c = 0; c < channels; c++)
                o[c] = quantize(q8_gelu(acc[c] * in_scale + bias[c]), out_inv_scale, out_zero_point);
        }
    }
}

CK_VECTOR_CLONES
void ref_layer_norm_f32(const float *in, float *out, size_t rows, size_t channels,
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

static void bilinear_taps(size_t out_size, size_t in_size, size_t i, size_t *i0, size_t *i1, float *w1) {
    const float scale = (float)in_size / (float)out_size;
    float src = ((float)i + 0.5f) * scale - 0.5f;
    if (src < 0.0f) src = 0.0f;
    size_t lo = (size_t)src;
    if (lo > in_size - 1) lo = in_size - 1;
    *i0 = lo;
    *i1 = lo + 1 < in_size ? lo + 1 : in_size - 1;
    *w1 = src - (float)lo;
}

CK_VECTOR_CLONES
void ref_resize_bilinear_hwc_rows_f32(const float *in, size_t in_height, size_t in_width, size_t channels,
                                     float *out, size_t out_height, size_t out_width,
                                     size_t first_row, size_t row_count, int accumulate) {
    const size_t end_row = first_row + row_count < out_height ? first_row + row_count : out_height;
    for (size_t y = first_row; y < end_row; y++) {
        size_t y0, y1;
        float wy;
        bilinear_taps(out_height, in_height, y, &y0, &y1, &wy);
        for (size_t x = 0; x < out_width; x++) {
            size_t x0, x1;
            float wx;
            bilinear_taps(out_width, in_width, x, &x0, &x1, &wx);
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

// The attention output's last steps as the engine took them before ck_scale_heads_quantize_u8:
// ck_scale_rows_f32 per head, then ck_quantize_rows_u8 over the rows.
void ref_scale_heads_quantize_u8(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim, const float *factors,
                                 uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point) {
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < heads; h++)
            for (size_t c = 0; c < head_dim; c++) {
                const float x = in[r * ldi + h * head_dim + c] * factors[h * rows + r];
                float v = round_even(x * inv_scale) + (float)zero_point;
                v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
                out[r * ldo + h * head_dim + c] = (uint8_t)(int32_t)v;
            }
}
