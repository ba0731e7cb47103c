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

/// erf on [0, 4] in 16 pieces of width ¼, each a degree-4 polynomial in the position u ∈ [0, 1) inside
/// its piece (t = 4z = piece + u), fitted on Chebyshev nodes: |error| ≤ 2.2e-7 in float, as ck_erff's
/// Abramowitz & Stegun formula (≤ 1.5e-7); |erf(4) − 1| is 1.5e-8. Four fused multiply-adds and five table
/// reads, no division and no exp: the SIMD versions read the coefficients from registers (AVX-512 vpermps,
/// NEON tbl). (A rational fit, degrees 5/4 with one division, was 5× less accurate, and on Zen 4, where a
/// 512-bit division is two 256-bit ones, the AVX-512 depthwise convolution ran 10 % slower with it.)
static const float ck_erf_pieces[5][16] __attribute__((aligned(64))) = {
    {1.999647310e-07f, 2.763264775e-01f, 5.204998255e-01f, 7.111555338e-01f, 8.427006602e-01f, 9.229000807e-01f,
     9.661051631e-01f, 9.866716862e-01f, 9.953222871e-01f, 9.985373020e-01f, 9.995930791e-01f, 9.998993874e-01f,
     9.999778867e-01f, 9.999957085e-01f, 9.999992847e-01f, 9.999998808e-01f},
    {2.820847332e-01f, 2.649987936e-01f, 2.196978629e-01f, 1.607390195e-01f, 1.037828252e-01f, 5.913339183e-02f,
     2.973292023e-02f, 1.319270767e-02f, 5.165545736e-03f, 1.784755848e-03f, 5.441472749e-04f, 1.463943336e-04f,
     3.475342965e-05f, 7.280020327e-06f, 1.345628903e-06f, 2.194687312e-07f},
    {8.095261001e-05f, -1.652323455e-02f, -2.747830935e-02f, -3.018702753e-02f, -2.599222213e-02f, -1.850380749e-02f,
     -1.115298457e-02f, -5.764097441e-03f, -2.573724603e-03f, -9.976995643e-04f, -3.368920879e-04f, -9.932734974e-05f,
     -2.561528345e-05f, -5.785823760e-06f, -1.145836109e-06f, -1.991288769e-07f},
    {-6.106021814e-03f, -4.948385060e-03f, -2.249213401e-03f, 5.553178489e-04f, 2.298285021e-03f, 2.692671958e-03f,
     2.179493429e-03f, 1.386639429e-03f, 7.262862637e-04f, 3.202621010e-04f, 1.204139626e-04f, 3.891307279e-05f,
     1.086695920e-05f, 2.632593578e-06f, 5.548283184e-07f, 1.019474496e-07f},
    {2.663215855e-04f, 6.461477024e-04f, 6.855222164e-04f, 4.380968167e-04f, 1.106830969e-04f, -1.171211916e-04f,
     -1.928955753e-04f, -1.646994497e-04f, -1.031364372e-04f, -5.158572458e-05f, -2.135522845e-05f, -7.455227660e-06f,
     -2.219619546e-06f, -5.677458716e-07f, -1.254049380e-07f, -2.400958543e-08f},
};

/// gelu(x)·out_scale, where half_scale = ½·out_scale, with erf from ck_erf_pieces on |x|/√2 clamped below 4 (erf is
/// odd: x's sign bit goes back on afterwards): what the int8 depthwise convolution's versions compute, operation for
/// operation, so that the portable, AVX-512 and NEON code round alike (every multiply-add written as fmaf, fused on
/// every target; baseline x86-64 calls libm's, which rounds once too). It differs from ck_gelu by a few 1e-7·|x|.
static inline float ck_gelu_scaled(float x, float half_scale) {
    union { float f; uint32_t u; } ax = {.f = x}, p;
    ax.u &= 0x7FFFFFFFu;
    float t = ax.f * 2.82842712474619009760f; // 4·|x|/√2
    t = t < 15.999999f ? t : 15.999999f;
    const int32_t piece = (int32_t)t;         // ⌊t⌋: t ≥ 0
    const float u = t - (float)piece;         // exact
    p.f = ck_erf_pieces[4][piece];
    p.f = __builtin_fmaf(p.f, u, ck_erf_pieces[3][piece]);
    p.f = __builtin_fmaf(p.f, u, ck_erf_pieces[2][piece]);
    p.f = __builtin_fmaf(p.f, u, ck_erf_pieces[1][piece]);
    p.f = __builtin_fmaf(p.f, u, ck_erf_pieces[0][piece]);
    union { float f; uint32_t u; } sx = {.f = x};
    p.u |= sx.u & 0x80000000u;                // erf(x/√2)
    const float hx = x * half_scale;
    return __builtin_fmaf(hx, p.f, hx);
}

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
