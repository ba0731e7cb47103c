// AVX-512 direct fp32 convolution (see ckernels_conv.h): a tile of 8 output pixels of
// one row × 32 output channels in 16 zmm accumulators; per (tap, input channel) two
// loads of packed weights, 8 broadcasts of input values and 16 FMAs. Pixels whose
// tap falls in the padding (or past the row's end) take a zero mask, so they skip
// the FMA exactly as the portable version skips the tap.
#include "ckernels_conv.h"
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include <immintrin.h>

#pragma clang fp contract(off)

#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define INLINE static inline __attribute__((always_inline))

enum { R = 8 };

// Σ over n consecutive taps t of x_r[t]·w[t·wstride], x_r = x + r·pstep, all pixels valid.
#define RUN_FULL()                                                                                   \
    {                                                                                                \
        const float *x0 = x, *x1 = x + pstep, *x2 = x + 2 * pstep, *x3 = x + 3 * pstep;              \
        const float *x4 = x + 4 * pstep, *x5 = x + 5 * pstep, *x6 = x + 6 * pstep, *x7 = x + 7 * pstep; \
        for (size_t t = 0; t < n; t++, w += wstride) {                                               \
            const __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16);                        \
            STEP(a0, b0, x0) STEP(a1, b1, x1) STEP(a2, b2, x2) STEP(a3, b3, x3)                      \
            STEP(a4, b4, x4) STEP(a5, b5, x5) STEP(a6, b6, x6) STEP(a7, b7, x7)                      \
        }                                                                                            \
    }
#define STEP(a, b, xr)                                  \
    {                                                   \
        const __m512 v = _mm512_set1_ps(xr[t]);         \
        a = _mm512_fmadd_ps(w0, v, a);                  \
        b = _mm512_fmadd_ps(w1, v, b);                  \
    }

// One tile whose taps all fall inside the row (only whole kernel rows may be padding).
// channels_last: a kernel row is k·C consecutive floats of each pixel, so one run per row;
// else one run of k taps per (kernel row, channel).
CK_AVX512 INLINE void tile_full_body(__m512 acc[R][2], const float *in, ptrdiff_t iy0, size_t height, size_t row_stride,
                                size_t pixel_stride, size_t channel_stride, size_t channels, size_t kernel, size_t stride,
                                ptrdiff_t ix0, const float *wp, int channels_last) {
    __m512 a0 = acc[0][0], a1 = acc[1][0], a2 = acc[2][0], a3 = acc[3][0], a4 = acc[4][0], a5 = acc[5][0], a6 = acc[6][0],
           a7 = acc[7][0];
    __m512 b0 = acc[0][1], b1 = acc[1][1], b2 = acc[2][1], b3 = acc[3][1], b4 = acc[4][1], b5 = acc[5][1], b6 = acc[6][1],
           b7 = acc[7][1];
    const size_t pstep = stride * pixel_stride;
    for (size_t ky = 0; ky < kernel; ky++) {
        const ptrdiff_t iy = iy0 + (ptrdiff_t)ky;
        if (iy < 0 || iy >= (ptrdiff_t)height) continue;
        const float *rowp = in + (size_t)iy * row_stride + (size_t)ix0 * pixel_stride;
        if (channels_last) {
            const float *x = rowp, *w = wp + ky * kernel * channels * CK_CONV_NR;
            const size_t n = kernel * channels, wstride = CK_CONV_NR;
            RUN_FULL()
        } else {
            for (size_t c = 0; c < channels; c++) {
                const float *x = rowp + c * channel_stride, *w = wp + (ky * kernel * channels + c) * CK_CONV_NR;
                const size_t n = kernel, wstride = channels * CK_CONV_NR;
                RUN_FULL()
            }
        }
    }
    acc[0][0] = a0, acc[1][0] = a1, acc[2][0] = a2, acc[3][0] = a3, acc[4][0] = a4, acc[5][0] = a5, acc[6][0] = a6,
    acc[7][0] = a7;
    acc[0][1] = b0, acc[1][1] = b1, acc[2][1] = b2, acc[3][1] = b3, acc[4][1] = b4, acc[5][1] = b5, acc[6][1] = b6,
    acc[7][1] = b7;
}
#undef STEP

// Out of line, so that the 16 accumulators are all the function holds (inlined, they were spilled).
CK_AVX512 __attribute__((noinline)) static void tile_full_hwc(__m512 acc[R][2], const float *in, ptrdiff_t iy0,
                                                              size_t height, size_t row_stride, size_t pixel_stride,
                                                              size_t channels, size_t kernel, size_t stride, ptrdiff_t ix0,
                                                              const float *wp) {
    tile_full_body(acc, in, iy0, height, row_stride, pixel_stride, 1, channels, kernel, stride, ix0, wp, 1);
}
CK_AVX512 __attribute__((noinline)) static void tile_full_chw(__m512 acc[R][2], const float *in, ptrdiff_t iy0,
                                                              size_t height, size_t row_stride, size_t pixel_stride,
                                                              size_t channel_stride, size_t channels, size_t kernel,
                                                              size_t stride, ptrdiff_t ix0, const float *wp) {
    tile_full_body(acc, in, iy0, height, row_stride, pixel_stride, channel_stride, channels, kernel, stride, ix0, wp, 0);
}

// A tile at the edge of the row (or a short last tile): per tap, pixels outside take a zero mask.
CK_AVX512 static void tile_edge(__m512 acc[R][2], const float *in, ptrdiff_t iy0, size_t height, size_t width,
                                size_t row_stride, size_t pixel_stride, size_t channel_stride, size_t channels,
                                size_t kernel, size_t stride, ptrdiff_t ix0base, size_t pixels, const float *wp) {
    for (size_t ky = 0; ky < kernel; ky++) {
        const ptrdiff_t iy = iy0 + (ptrdiff_t)ky;
        if (iy < 0 || iy >= (ptrdiff_t)height) continue;
        const float *rowp = in + (size_t)iy * row_stride;
        // Same order as tile_full: (kx, c) for channels-last input, (c, kx) otherwise.
        const int channels_last = channel_stride == 1 && pixel_stride == channels;
        const size_t outer = channels_last ? kernel : channels, inner = channels_last ? channels : kernel;
        for (size_t u = 0; u < outer; u++) {
            for (size_t v = 0; v < inner; v++) {
                const size_t kx = channels_last ? u : v, c = channels_last ? v : u;
                const float *w = wp + ((ky * kernel + kx) * channels + c) * CK_CONV_NR;
                const __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16);
                for (int r = 0; r < R; r++) {
                    const ptrdiff_t ix = ix0base + (ptrdiff_t)kx + (ptrdiff_t)(r * stride);
                    const int ok = (size_t)r < pixels && ix >= 0 && ix < (ptrdiff_t)width;
                    if (!ok) continue;
                    const __m512 x = _mm512_set1_ps(rowp[ix * (ptrdiff_t)pixel_stride + (ptrdiff_t)(c * channel_stride)]);
                    acc[r][0] = _mm512_fmadd_ps(w0, x, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(w1, x, acc[r][1]);
                }
            }
        }
    }
}

CK_AVX512
void ck_conv2d_f32_avx512(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                          size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                          size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                          size_t out_height, size_t out_width, size_t first_row, size_t row_count) {
    (void)out_height;
    const size_t panels = (out_channels + CK_CONV_NR - 1) / CK_CONV_NR, panel_size = kernel * kernel * channels * CK_CONV_NR;
    for (size_t p = 0; p < panels; p++) {
        const float *wp = packed + p * panel_size;
        const size_t nvalid = out_channels - p * CK_CONV_NR < CK_CONV_NR ? out_channels - p * CK_CONV_NR : CK_CONV_NR;
        const __mmask16 sm0 = nvalid >= 16 ? 0xFFFF : (__mmask16)((1u << nvalid) - 1);
        const __mmask16 sm1 = nvalid >= 32 ? 0xFFFF : nvalid <= 16 ? 0 : (__mmask16)((1u << (nvalid - 16)) - 1);
        __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
        if (bias) {
            b0 = _mm512_maskz_loadu_ps(sm0, bias + p * CK_CONV_NR);
            b1 = _mm512_maskz_loadu_ps(sm1, bias + p * CK_CONV_NR + 16);
        }
        for (size_t oy = first_row; oy < first_row + row_count; oy++) {
            for (size_t ox0 = 0; ox0 < out_width; ox0 += R) {
                const size_t pixels = out_width - ox0 < R ? out_width - ox0 : R;
                __m512 acc[R][2];
                for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
                const ptrdiff_t iy0 = (ptrdiff_t)(oy * stride) - (ptrdiff_t)padding;
                const ptrdiff_t ix0 = (ptrdiff_t)(ox0 * stride) - (ptrdiff_t)padding;
                const ptrdiff_t ixl = ix0 + (ptrdiff_t)((R - 1) * stride + kernel - 1);
                if (pixels == R && ix0 >= 0 && ixl < (ptrdiff_t)width) {
                    if (channel_stride == 1 && pixel_stride == channels)
                        tile_full_hwc(acc, in, iy0, height, row_stride, pixel_stride, channels, kernel, stride, ix0, wp);
                    else
                        tile_full_chw(acc, in, iy0, height, row_stride, pixel_stride, channel_stride, channels, kernel,
                                      stride, ix0, wp);
                } else {
                    tile_edge(acc, in, iy0, height, width, row_stride, pixel_stride, channel_stride, channels, kernel,
                              stride, ix0, pixels, wp);
                }
                float *o = out + (oy * out_width + ox0) * out_channels + p * CK_CONV_NR;
                for (size_t r = 0; r < pixels; r++) {
                    const __m512 v0 = _mm512_add_ps(acc[r][0], b0), v1 = _mm512_add_ps(acc[r][1], b1);
                    if (nvalid == CK_CONV_NR) {
                        _mm512_storeu_ps(o + r * out_channels, v0);
                        _mm512_storeu_ps(o + r * out_channels + 16, v1);
                    } else {
                        _mm512_mask_storeu_ps(o + r * out_channels, sm0, v0);
                        _mm512_mask_storeu_ps(o + r * out_channels + 16, sm1, v1);
                    }
                }
            }
        }
    }
}
#endif
