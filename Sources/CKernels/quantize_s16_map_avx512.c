// AVX-512 (F, BW) version of the 16-bit convolution's input quantization (see
// ck_quantize_s16_map in ckernels_conv_s16.h) for the two layouts the engine passes: a
// channels-last map with a multiple of 16 channels, and a 3-channel channels-first image.
// The int conversion rounds half to even and clamps as the portable version does: the same values.
#include "ckernels_conv_s16.h"
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include <immintrin.h>

#define TARGET_BW __attribute__((target("avx512f,avx512bw")))

static inline TARGET_BW __m512i quantize16(__m512 x, __m512 inv) {
    const __m512i bound = _mm512_set1_epi32(CK_S16_INPUT_MAX);
    const __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(x, inv));
    return _mm512_max_epi32(_mm512_min_epi32(q, bound), _mm512_sub_epi32(_mm512_setzero_si512(), bound));
}

/// Returns 0 (and writes nothing) for layouts it has no fast path for.
static TARGET_BW int quantize_fast(const float *in, size_t width, size_t channels, size_t row_stride,
                                   size_t pixel_stride, size_t channel_stride, float inv_scale, int16_t *out, size_t map_width,
                                   size_t padding, size_t first_row, size_t row_count) {
    const size_t cp = ck_conv2d_s16_channel_stride(channels);
    const __m512 inv = _mm512_set1_ps(inv_scale);
    if (channel_stride == 1 && pixel_stride == channels && channels % 16 == 0) {
        // Channels-last: each pixel's channels are contiguous, 16 at a time.
        for (size_t y = first_row; y < first_row + row_count; y++) {
            const float *src = in + y * row_stride;
            int16_t *row = out + ((y + padding) * map_width + padding) * cp;
            for (size_t i = 0; i < width * channels; i += 16)
                _mm256_storeu_si256((__m256i *)(row + i), _mm512_cvtepi32_epi16(quantize16(_mm512_loadu_ps(src + i), inv)));
        }
        return 1;
    }
    if (pixel_stride == 1 && channels == 3) {
        // A channels-first image: 16 pixels of each plane, interleaved into [pixel][c0 c1 c2 0].
        const __m512i low = _mm512_set1_epi32(0xFFFF);
        const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        for (size_t y = first_row; y < first_row + row_count; y++) {
            const float *src = in + y * row_stride;
            int16_t *row = out + ((y + padding) * map_width + padding) * cp;
            for (size_t x = 0; x < width; x += 16) {
                const __mmask16 m = width - x >= 16 ? 0xFFFF : (__mmask16)((1u << (width - x)) - 1);
                const __m512i c0 = quantize16(_mm512_maskz_loadu_ps(m, src + x), inv);
                const __m512i c1 = quantize16(_mm512_maskz_loadu_ps(m, src + channel_stride + x), inv);
                const __m512i c2 = quantize16(_mm512_maskz_loadu_ps(m, src + 2 * channel_stride + x), inv);
                const __m512i pair01 = _mm512_or_si512(_mm512_and_si512(c0, low), _mm512_slli_epi32(c1, 16));
                const __m512i pair2 = _mm512_and_si512(c2, low); // channel 3 (padding) is 0
                // Dword 2p = pixel p's (c0, c1), dword 2p + 1 = its (c2, 0).
                const __m512i lo = _mm512_permutex2var_epi32(pair01, first, pair2);
                const __m512i hi = _mm512_permutex2var_epi32(pair01, second, pair2);
                const size_t n = width - x < 16 ? width - x : 16; // pixels; 2 dwords each
                _mm512_mask_storeu_epi32(row + x * cp, n >= 8 ? 0xFFFF : (__mmask16)((1u << (2 * n)) - 1), lo);
                if (n > 8) _mm512_mask_storeu_epi32(row + (x + 8) * cp, n >= 16 ? 0xFFFF : (__mmask16)((1u << (2 * (n - 8))) - 1), hi);
            }
        }
        return 1;
    }
    return 0;
}

void ck_quantize_s16_map_avx512(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                                size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                                size_t first_row, size_t row_count) {
    if (!quantize_fast(in, width, channels, row_stride, pixel_stride, channel_stride, inv_scale, out, map_width, padding,
                       first_row, row_count))
        ck_quantize_s16_map_portable(in, width, channels, row_stride, pixel_stride, channel_stride, inv_scale, out, map_width,
                                     padding, first_row, row_count);
}
#endif
