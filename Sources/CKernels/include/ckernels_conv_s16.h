#ifndef CKERNELS_CONV_S16_H
#define CKERNELS_CONV_S16_H
// Direct convolution in 16-bit integers, for the patch embeddings that int8 would
// cost too much accuracy (they start each stage's residual stream) and fp32 too
// much time. The input is quantized per frame, symmetric, to CK_S16_INPUT_MAX
// (13 bits, 16× finer than a u8 grid, never clipped: the scale is the frame's own
// max |x|); weights per output channel to the largest bound that keeps every
// possible sum inside int32. Sums are exact integers, so every version writes the
// same bits; on x86 with AVX-512 VNNI one vpdpwssd does 32 multiply-adds, twice an
// fp32 FMA.
//
// The quantized input lives in a zero-bordered channels-last map, [rows][columns][cp]
// with cp = the channel count rounded up to even (taps go in pairs), `pad` zero
// pixels on every side and extra zero columns on the right for the last tile:
// the kernels then never test a bound.
#include <stddef.h>
#include <stdint.h>

#include "ckernels_fp32.h" // ck_max_abs_f32, for the per-frame input scale

/// The input's quantization bound: q = round(x / max|x| · CK_S16_INPUT_MAX).
#define CK_S16_INPUT_MAX 2047

/// Channels as stored in the quantized map and the packed weights: `channels` rounded up to even.
size_t ck_conv2d_s16_channel_stride(size_t channels);

/// Columns (pixels) of the bordered input map of a conv with this geometry, and its rows.
size_t ck_conv2d_s16_map_width(size_t width, size_t kernel, size_t stride, size_t padding);
size_t ck_conv2d_s16_map_height(size_t height, size_t padding);

/// The weights' quantization bound for this geometry (so that kernel²·cp·input_max·bound < 2³¹),
/// at most 32767; 0 when even a 7-bit bound would not fit (use fp32 then).
int32_t ck_conv2d_s16_weight_max(size_t kernel, size_t channels);

/// int16 elements of packed weights for `out_channels` filters of kernel×kernel×channels.
size_t ck_conv2d_s16_packed_size(size_t out_channels, size_t kernel, size_t channels);

/// Quantizes w[out][ky][kx][c] per output channel to ±ck_conv2d_s16_weight_max (which must be
/// > 0) and packs it: per panel of 32 output channels, per kernel row, per pair of taps of the
/// row's kx·cp + c order, the 32 channels' two taps side by side. scales[o] = max|w_o| / bound.
void ck_conv2d_s16_pack(const float *w, size_t out_channels, size_t kernel, size_t channels, int16_t *packed, float *scales);

/// Input rows first_row ..< first_row + row_count of a float map, in(y, x, c) =
/// in[y·row_stride + x·pixel_stride + c·channel_stride], quantized as round(x·inv_scale)
/// (half to even, clamped to ±CK_S16_INPUT_MAX) into the bordered map `out` of
/// map_width columns; the padding channels are written 0, the border is not touched.
void ck_quantize_s16_map(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                         size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                         size_t first_row, size_t row_count);

/// The portable version, always (tests: it must equal ck_quantize_s16_map).
void ck_quantize_s16_map_portable(const float *in, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                                  size_t channel_stride, float inv_scale, int16_t *out, size_t map_width, size_t padding,
                                  size_t first_row, size_t row_count);

/// Writes zeros to the border of a bordered map for a height×width input (the padding rows, and
/// the columns left and right of the input in the others); the input's own pixels are not touched.
void ck_zero_s16_map_border(int16_t *map, size_t height, size_t width, size_t channels, size_t map_width, size_t padding);

/// out[oy][ox][o] = (float)Σ q_in·q_w · scales[o] + bias[o] (bias may be NULL) for output rows
/// first_row ..< first_row + row_count, reading the bordered map (map_width columns). Pass
/// scales[o] = input scale × weight scale o.
void ck_conv2d_s16(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed, size_t out_channels,
                   size_t kernel, size_t stride, const float *scales, const float *bias, float *out, size_t out_width,
                   size_t first_row, size_t row_count);

/// The portable version, always (tests: it must equal ck_conv2d_s16 bit for bit).
void ck_conv2d_s16_portable(const int16_t *in, size_t map_width, size_t channels, const int16_t *packed,
                            size_t out_channels, size_t kernel, size_t stride, const float *scales, const float *bias,
                            float *out, size_t out_width, size_t first_row, size_t row_count);

/// Which ck_conv2d_s16 runs here, for the engine's choice between 16 bits and fp32: 0 the portable
/// loop (slower than ck_conv2d_f32's: the engine stays in fp32); 1 a SIMD kernel doing as many
/// multiply-accumulates per instruction as ck_conv2d_f32's (AArch64 NEON: the patch embeddings stay
/// in fp32, bit for bit the portable convolution, and only the decoder's wide inputs, whose fp32
/// form is a plain matrix product with no SIMD kernel, run at 16 bits); 2 a faster one (AVX-512
/// VNNI: both run at 16 bits). Follows MTLSEG_KERNELS.
int ck_conv2d_s16_fast(void);

#endif
