// Direct fp32 convolution: packing and the portable version (conv_f32_avx512.c the other; ops_dispatch.c chooses).
#include "ckernels_conv.h"
#include "ops_dispatch.h"

#include <math.h>
#include <string.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

size_t ck_conv2d_f32_packed_size(size_t out_channels, size_t kernel, size_t channels) {
    size_t panels = (out_channels + CK_CONV_NR - 1) / CK_CONV_NR;
    return panels * kernel * kernel * channels * CK_CONV_NR;
}

void ck_conv2d_f32_pack(const float *w, size_t out_channels, size_t kernel, size_t channels, float *packed) {
    size_t taps = kernel * kernel * channels;
    size_t panels = (out_channels + CK_CONV_NR - 1) / CK_CONV_NR;
    for (size_t p = 0; p < panels; p++)
        for (size_t t = 0; t < taps; t++)
            for (size_t j = 0; j < CK_CONV_NR; j++) {
                size_t o = p * CK_CONV_NR + j;
                *packed++ = o < out_channels ? w[o * taps + t] : 0.0f;
            }
}

void ck_conv2d_f32_portable(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                            size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                            size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                            size_t out_height, size_t out_width, size_t first_row, size_t row_count) {
    (void)out_height;
    const size_t panels = (out_channels + CK_CONV_NR - 1) / CK_CONV_NR, panel_size = kernel * kernel * channels * CK_CONV_NR;
    for (size_t oy = first_row; oy < first_row + row_count; oy++) {
        for (size_t ox = 0; ox < out_width; ox++) {
            for (size_t p = 0; p < panels; p++) {
                const float *wp = packed + p * panel_size;
                float acc[CK_CONV_NR] = {0};
                for (size_t ky = 0; ky < kernel; ky++) {
                    const ptrdiff_t iy = (ptrdiff_t)(oy * stride + ky) - (ptrdiff_t)padding;
                    if (iy < 0 || iy >= (ptrdiff_t)height) continue;
                    const int channels_last = channel_stride == 1 && pixel_stride == channels;
                    const size_t outer = channels_last ? kernel : channels, inner = channels_last ? channels : kernel;
                    for (size_t u = 0; u < outer; u++) {
                        for (size_t v = 0; v < inner; v++) {
                            const size_t kx = channels_last ? u : v, c = channels_last ? v : u;
                            const ptrdiff_t ix = (ptrdiff_t)(ox * stride + kx) - (ptrdiff_t)padding;
                            if (ix < 0 || ix >= (ptrdiff_t)width) continue;
                            const float x = in[(size_t)iy * row_stride + (size_t)ix * pixel_stride + c * channel_stride];
                            const float *w = wp + ((ky * kernel + kx) * channels + c) * CK_CONV_NR;
                            for (size_t j = 0; j < CK_CONV_NR; j++) acc[j] = fmaf(w[j], x, acc[j]);
                        }
                    }
                }
                float *o = out + (oy * out_width + ox) * out_channels + p * CK_CONV_NR;
                size_t n = out_channels - p * CK_CONV_NR < CK_CONV_NR ? out_channels - p * CK_CONV_NR : CK_CONV_NR;
                for (size_t j = 0; j < n; j++) o[j] = acc[j] + (bias ? bias[p * CK_CONV_NR + j] : 0.0f);
            }
        }
    }
}
