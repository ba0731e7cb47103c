// 16-bit integer direct convolution: geometry, weight packing, input quantization and
// the portable versions (see ckernels_conv_s16.h); ops_dispatch.c chooses between versions.
#include "ckernels_conv_s16.h"
#include "ck_math.h"
#include "ckernels_conv.h"
#include "ops_dispatch.h"

#include <math.h>
#include <string.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

enum { NR = CK_CONV_NR, TILE = 8 };

size_t ck_conv2d_s16_channel_stride(size_t channels) { return (channels + 1) & ~(size_t)1; }

size_t ck_conv2d_s16_map_width(size_t width, size_t kernel, size_t stride, size_t padding) {
    const size_t out_width = (width + 2 * padding - kernel) / stride + 1;
    const size_t tiles = (out_width + TILE - 1) / TILE;
    const size_t needed = (tiles * TILE - 1) * stride + kernel; // what the last whole tile reads
    const size_t bordered = width + 2 * padding;
    return needed > bordered ? needed : bordered;
}

size_t ck_conv2d_s16_map_height(size_t height, size_t padding) { return height + 2 * padding; }

int32_t ck_conv2d_s16_weight_max(size_t kernel, size_t channels) {
    const double taps = (double)(kernel * kernel * ck_conv2d_s16_channel_stride(channels));
    double bound = floor(2147483647.0 / (taps * CK_S16_INPUT_MAX));
    if (bound > 32767) bound = 32767;
    return bound < 127 ? 0 : (int32_t)bound;
}

size_t ck_conv2d_s16_packed_size(size_t out_channels, size_t kernel, size_t channels) {
    const size_t panels = (out_channels + NR - 1) / NR;
    return panels * kernel * kernel * ck_conv2d_s16_channel_stride(channels) * NR;
}

static inline int32_t round_clamp(float v, int32_t bound) {
    v = ck_round_even(v);
    v = v < (float)-bound ? (float)-bound : (v > (float)bound ? (float)bound : v);
    return (int32_t)v;
}

void ck_conv2d_s16_pack(const float *w, size_t out_channels, size_t kernel, size_t channels, int16_t *packed, float *scales) {
    const int32_t bound = ck_conv2d_s16_weight_max(kernel, channels);
    const size_t cp = ck_conv2d_s16_channel_stride(channels), run = kernel * cp, taps = kernel * kernel * channels;
    const size_t panels = (out_channels + NR - 1) / NR;
    for (size_t o = 0; o < out_channels; o++) {
        float largest = 0.0f;
        for (size_t t = 0; t < taps; t++) largest = fmaxf(largest, fabsf(w[o * taps + t]));
        scales[o] = largest > 0.0f ? largest / (float)bound : 1.0f;
    }
    for (size_t p = 0; p < panels; p++)
        for (size_t ky = 0; ky < kernel; ky++)
            for (size_t q = 0; q < run / 2; q++)
                for (size_t j = 0; j < NR; j++)
                    for (size_t half = 0; half < 2; half++) {
                        const size_t o = p * NR + j, t = 2 * q + half, kx = t / cp, c = t % cp;
                        int16_t v = 0;
                        if (o < out_channels && c < channels)
                            v = (int16_t)round_clamp(w[o * taps + (ky * kernel + kx) * channels + c] / scales[o], bound);
                        *packed++ = v;
                    }
}

CK_VECTOR_CLONES
void ck_quantize_s16_map_portable(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                         size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                         size_t first_row, size_t row_count) {
    const size_t cp = ck_conv2d_s16_channel_stride(channels);
    for (size_t y = first_row; y < first_row + row_count; y++) {
        int16_t *row = out + ((y + padding) * map_width + padding) * cp;
        for (size_t x = 0; x < width; x++) {
            const float *src = in + y * row_stride + x * pixel_stride;
            for (size_t c = 0; c < channels; c++)
                row[x * cp + c] = (int16_t)round_clamp(src[c * channel_stride] * inv_scale, CK_S16_INPUT_MAX);
            if (cp > channels) row[x * cp + channels] = 0;
        }
    }
}

void ck_zero_s16_map_border(int16_t *map, size_t height, size_t width, size_t channels, size_t map_width, size_t padding) {
    const size_t cp = ck_conv2d_s16_channel_stride(channels), row = map_width * cp;
    memset(map, 0, padding * row * sizeof *map);
    memset(map + (padding + height) * row, 0, padding * row * sizeof *map);
    for (size_t y = padding; y < padding + height; y++) {
        memset(map + y * row, 0, padding * cp * sizeof *map);
        memset(map + y * row + (padding + width) * cp, 0, (map_width - padding - width) * cp * sizeof *map);
    }
}

void ck_conv2d_s16_portable(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed,
                            size_t out_channels, size_t kernel, size_t stride, const float *scales, const float *bias,
                            float *out, size_t out_width, size_t first_row, size_t row_count) {
    const size_t cp = ck_conv2d_s16_channel_stride(channels), run = kernel * cp;
    const size_t panels = (out_channels + NR - 1) / NR;
    for (size_t oy = first_row; oy < first_row + row_count; oy++)
        for (size_t ox = 0; ox < out_width; ox++)
            for (size_t p = 0; p < panels; p++) {
                int32_t acc[NR] = {0};
                for (size_t ky = 0; ky < kernel; ky++) {
                    const int16_t *x = in + ((oy * stride + ky) * map_width + ox * stride) * cp;
                    const int16_t *w = packed + (p * kernel + ky) * run * NR;
                    for (size_t q = 0; q < run / 2; q++)
                        for (size_t j = 0; j < NR; j++)
                            acc[j] += (int32_t)x[2 * q] * w[(q * NR + j) * 2] + (int32_t)x[2 * q + 1] * w[(q * NR + j) * 2 + 1];
                }
                float *o = out + (oy * out_width + ox) * out_channels + p * NR;
                const size_t n = out_channels - p * NR < NR ? out_channels - p * NR : NR;
                for (size_t j = 0; j < n; j++) {
                    const float v = (float)acc[j] * scales[p * NR + j];
                    o[j] = bias ? v + bias[p * NR + j] : v;
                }
            }
}
