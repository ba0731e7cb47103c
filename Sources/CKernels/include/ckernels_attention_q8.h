#ifndef CKERNELS_ATTENTION_Q8_H
#define CKERNELS_ATTENTION_Q8_H
// The pieces of int8 self-attention around the two matrix products
// S = Q·Kᵀ and O = softmax(S)·V, which run on the qgemm kernels:
// keys and values are quantized per frame (symmetric s8), the softmax writes
// its unnormalised exponentials as u8, and each output row is divided by the
// sum of those exponentials afterwards, on the narrow head output, as it is quantized.
#include <stddef.h>
#include <stdint.h>

/// Symmetric s8 quantization of rows×cols floats (row stride ldi) with the
/// scale max|x|/127, written row-major (stride ldo), or transposed
/// ([cols][rows], stride ldo) when `transpose` is non-zero. Returns the scale.
float ck_quantize_symmetric_s8(const float *in, size_t ldi, size_t rows, size_t cols, int8_t *out, size_t ldo, int transpose);

/// sums[j] = multiplier · Σ_k b[j][k] for the n rows of b (row stride ldb), k values each.
void ck_row_sums_s8(const int8_t *b, size_t n, size_t k, size_t ldb, int32_t multiplier, int32_t *sums);

/// Per row of scores (stride lds): e = exp(s − max), written as u8 round(255·e)
/// (stride ldo); inv_sums[r] = 1 / Σ of the written bytes.
void ck_softmax_exp_u8(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo, float *inv_sums);

/// The attention output of `rows` rows (stride ldi), head h in columns h·head_dim ..< (h+1)·head_dim,
/// each head's values multiplied by its row's factor factors[h·rows + r], then quantized as
/// ck_quantize_rows_u8 does (row stride ldo).
void ck_scale_heads_quantize_u8(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim, const float *factors,
                                uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point);

#endif
