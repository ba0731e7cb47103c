#ifndef CKERNELS_OPS_INTERNAL_H
#define CKERNELS_OPS_INTERNAL_H
// Hand-vectorised versions of some kernels of attention_q8.c, q8_ops.c, fp32_ops.c and the convolutions, one file
// per ISA, and the runtime choice between them (the portable C stays the fallback,
// and is all that other architectures build).
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__clang__)
#define CK_HAVE_X86_KERNELS 1

enum { CK_ISA_BASE = 0, CK_ISA_AVX2 = 1, CK_ISA_AVX512 = 2 };

/// The widest of the ISAs above that this CPU (and OS) runs, capped like the GEMM kernels by
/// MTLSEG_KERNELS (a set below avx512vnni keeps these kernels off AVX-512 too, "scalar" runs the
/// portable ones: then every operation takes the steps an AArch64 build takes); computed once,
/// race-free (every thread computes the same value).
static inline int ck_ops_isa(void) {
    static int cached = -1;
    int isa = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (isa < 0) {
        __builtin_cpu_init();
        isa = (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
                  ? CK_ISA_AVX512
                  : (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? CK_ISA_AVX2 : CK_ISA_BASE;
        const char *cap = getenv("MTLSEG_KERNELS");
        if (cap && (!strcmp(cap, "avxvnni") || !strcmp(cap, "avx2")) && isa > CK_ISA_AVX2) isa = CK_ISA_AVX2;
        if (cap && !strcmp(cap, "scalar")) isa = CK_ISA_BASE;
        __atomic_store_n(&cached, isa, __ATOMIC_RELAXED);
    }
    return isa;
}

void ck_softmax_exp_u8_avx512(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                              float *inv_sums);
void ck_softmax_exp_u8_avx2(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                            float *inv_sums);
void ck_dwconv3x3_gelu_u8_avx512(const uint8_t *in, size_t ldi, uint8_t *out, size_t ldo, size_t height, size_t width,
                                 size_t channels, const float *weight, const float *bias,
                                 float in_scale, int32_t in_zero_point, float out_inv_scale, int32_t out_zero_point,
                                 size_t first_row, size_t row_count);
void ck_layer_norm_quantize_u8_avx512(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                      const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point);
void ck_layer_norm_f32_avx512(const float *in, float *out, size_t rows, size_t channels, const float *gamma, const float *beta,
                              float eps);
/// Returns 0 (and writes nothing) for layouts it has no fast path for: then the portable version runs.
int ck_quantize_s16_map_avx512(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                               size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                               size_t first_row, size_t row_count);
void ck_scale_heads_quantize_u8_avx512(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                       const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point);
void ck_conv2d_s16_avx512vnni(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed,
                              size_t out_channels, size_t kernel, size_t stride, const float *scales, const float *bias,
                              float *out, size_t out_width, size_t first_row, size_t row_count);
void ck_conv2d_f32_avx512(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                          size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                          size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                          size_t out_height, size_t out_width, size_t first_row, size_t row_count);
#endif

#endif
