// Masks at another size than the model's output grid: the logits resized bilinearly, then the argmax,
// as HF's post_process_semantic_segmentation does with a target size (F.interpolate(mode="bilinear",
// align_corners=False), then argmax over the classes).
//
// The resize is separable and done in PyTorch's order: each output pixel is
//   (a·wx0 + b·wx1)·wy0 + (c·wx0 + d·wx1)·wy1
// (its CPU kernel interpolates along the width first, then blends the two rows), so the horizontal
// pass runs once per input row and the vertical pass blends two of those rows per output row.
// Contraction into fused multiply-adds is off, so every clone (CK_VECTOR_CLONES) rounds as the
// portable build does and the results are exact against it.
#include "ckernels_fp32.h"
#include "ck_math.h"

#include <math.h>

#pragma clang fp contract(off)

void ck_linear_taps_f32(size_t in_size, size_t out_size, uint32_t *index0, uint32_t *index1, float *weight0, float *weight1) {
    const float scale = (float)in_size / (float)out_size;
    for (size_t i = 0; i < out_size; i++) {
        if (in_size == out_size) {
            // PyTorch copies along a dimension that keeps its size.
            index0[i] = index1[i] = (uint32_t)i;
            weight0[i] = 1.0f;
            weight1[i] = 0.0f;
            continue;
        }
        float source = scale * ((float)i + 0.5f) - 0.5f;
        if (source < 0.0f) source = 0.0f;  // the clamp at 0 of align_corners=False
        size_t lo = (size_t)floorf(source);
        if (lo > in_size - 1) lo = in_size - 1;
        float lambda = source - (float)lo;
        lambda = lambda < 0.0f ? 0.0f : (lambda > 1.0f ? 1.0f : lambda);
        index0[i] = (uint32_t)lo;
        index1[i] = (uint32_t)(lo < in_size - 1 ? lo + 1 : lo);
        weight0[i] = 1.0f - lambda;
        weight1[i] = lambda;
    }
}

CK_VECTOR_CLONES
void ck_resample_rows_f32(const float *in, size_t rows, size_t in_width, float *out, size_t out_width,
                          const uint32_t *x0, const uint32_t *x1, const float *wx0, const float *wx1) {
    for (size_t r = 0; r < rows; r++) {
        const float *src = in + r * in_width;
        float *dst = out + r * out_width;
        for (size_t x = 0; x < out_width; x++) dst[x] = src[x0[x]] * wx0[x] + src[x1[x]] * wx1[x];
    }
}

CK_VECTOR_CLONES
void ck_blend_argmax_rows_f32(const float *rows, size_t classes, size_t in_height, size_t out_width,
                              const uint32_t *y0, const uint32_t *y1, const float *wy0, const float *wy1,
                              uint8_t *mask, size_t first_row, size_t row_count, float *best) {
    const size_t plane = in_height * out_width;
    for (size_t y = first_row; y < first_row + row_count; y++) {
        uint8_t *out = mask + y * out_width;
        const float w0 = wy0[y], w1 = wy1[y];
        const float *top = rows + y0[y] * out_width, *bottom = rows + y1[y] * out_width;
        for (size_t x = 0; x < out_width; x++) {
            best[x] = top[x] * w0 + bottom[x] * w1;
            out[x] = 0;
        }
        // A class wins only when strictly larger: the first maximum wins, as torch.argmax.
        for (size_t c = 1; c < classes; c++) {
            const float *t = top + c * plane, *b = bottom + c * plane;
            for (size_t x = 0; x < out_width; x++) {
                const float v = t[x] * w0 + b[x] * w1;
                const int wins = v > best[x];
                best[x] = wins ? v : best[x];
                out[x] = wins ? (uint8_t)c : out[x];
            }
        }
    }
}
