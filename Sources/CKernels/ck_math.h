#ifndef CK_MATH_H
#define CK_MATH_H
// Shared by the kernel files: the vectorisation clones, and exp / erf / GELU
// written branch-free so that the loops calling them vectorise (libm's expf and
// erff are a call per element, which dominated softmax and GELU).
#include <stddef.h>
#include <stdint.h>

// Compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the widest
// the CPU runs (ifunc). Other architectures build each function once.
#if defined(__x86_64__)
#define CK_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CK_VECTOR_CLONES
#endif

/// x rounded to an integer, ties to even (|x| < 2²²): adding and removing 1.5·2²³ rounds in the
/// FPU's default mode without a libm call (roundf is one without SSE4.1).
static inline float ck_round_even(float x) { return (x + 12582912.0f) - 12582912.0f; }

/// round-half-even of x·inv_scale + zero point, clamped to a byte: how activations are quantized.
static inline uint8_t ck_quantize_u8(float x, float inv_scale, int32_t zero_point) {
    float v = ck_round_even(x * inv_scale) + (float)zero_point;
    v = v < 0.0f ? 0.0f : (v > 255.0f ? 255.0f : v);
    return (uint8_t)(int32_t)v;
}

/// e^x to about 2 ulp over the range where the result is a normal float.
static inline float ck_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    // Round to nearest by adding and removing 1.5·2^23 (roundf is a call without SSE4.1).
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    // Cody-Waite reduction: r = x − n·ln2 in two parts keeps r exact.
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

/// erf(x) with absolute error below 2e-7 (Abramowitz & Stegun 7.1.26, evaluated in float).
static inline float ck_erff(float x) {
    const float a = x < 0.0f ? -x : x;
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    const float y = 1.0f - p * t * ck_expf(-a * a);
    return x < 0.0f ? -y : y;
}

/// Exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x/√2)).
static inline float ck_gelu(float x) { return 0.5f * x * (1.0f + ck_erff(x * 0.70710678118654752440f)); }

/// The two source indices and the second one's weight of output index i when resizing
/// in_size to out_size: PyTorch's align_corners=False, (i + 0.5)·scale − 0.5 clamped at 0.
static inline void ck_bilinear_taps(size_t out_size, size_t in_size, size_t i, size_t *i0, size_t *i1, float *w1) {
    const float scale = (float)in_size / (float)out_size;
    float src = ((float)i + 0.5f) * scale - 0.5f;
    if (src < 0.0f) src = 0.0f;
    size_t lo = (size_t)src;
    if (lo > in_size - 1) lo = in_size - 1;
    *i0 = lo;
    *i1 = lo + 1 < in_size ? lo + 1 : in_size - 1;
    *w1 = src - (float)lo;
}

/// The folded decoder's horizontal taps for output column x: for each of the map_count vertically blended
/// rows (blended[i]: widths[i] pixels of `channels` floats), the two source pixels a[i], b[i] and their weights
/// w0[i], w1[i]. Shared by every version of ck_decoder_sum_quantize_u8, which must weigh alike to write the same bytes:
/// always inlined, so that each version computes the taps inside its own code (left to the compiler, the AVX-512
/// version's bytes differed from the portable one's at one pixel of the harness's 45×61 case: the taps' multiply and
/// add may be fused in one copy and not in another).
static inline __attribute__((always_inline)) void ck_decoder_column_taps(size_t map_count, float *const *blended, const size_t *widths, size_t channels,
                                          size_t out_width, size_t x, const float **a, const float **b, float *w0,
                                          float *w1) {
    for (size_t i = 0; i < map_count; i++) {
        size_t x0, x1;
        ck_bilinear_taps(out_width, widths[i], x, &x0, &x1, &w1[i]);
        a[i] = blended[i] + x0 * channels;
        b[i] = blended[i] + x1 * channels;
        w0[i] = 1.0f - w1[i];
    }
}

#endif
