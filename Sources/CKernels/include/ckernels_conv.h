#ifndef CKERNELS_CONV_H
#define CKERNELS_CONV_H
// Direct fp32 convolution for the patch embeddings that stay in fp32: no im2col
// buffer, no layout change of the input (channels-first image or channels-last map,
// given by strides). Every output value is a chain of fused multiply-adds over the
// taps in the order (ky, kx, c) for channels-last input (pixel_stride = channels,
// channel_stride = 1) or (ky, c, kx) otherwise, then + bias: the portable and the x86 versions write the
// same bits, and any split of the rows over threads gives the same result.
#include <stddef.h>
#include <stdint.h>

/// Output channels per packed panel.
#define CK_CONV_NR 32

/// Floats of packed weights for `out_channels` filters of kernel×kernel×channels.
size_t ck_conv2d_f32_packed_size(size_t out_channels, size_t kernel, size_t channels);

/// Packs PyTorch-repacked weights w[out][ky][kx][c] into panels of CK_CONV_NR
/// output channels: packed[panel][ky][kx][c][CK_CONV_NR] (zero past out_channels).
void ck_conv2d_f32_pack(const float *w, size_t out_channels, size_t kernel, size_t channels, float *packed);

/// out[oy][ox][o] = Σ_{ky,kx,c} in(iy, ix, c)·w[o][ky][kx][c] + bias[o] for output rows
/// first_row ..< first_row + row_count, with iy = oy·stride − padding + ky (likewise ix),
/// zero outside the input. in(y, x, c) = in[y·row_stride + x·pixel_stride + c·channel_stride]
/// (channels-first: pixel_stride 1, channel_stride h·w; channels-last: pixel_stride C, channel_stride 1).
/// out has rows of out_channels floats; bias may be NULL.
void ck_conv2d_f32(const float *in, size_t height, size_t width, size_t channels, size_t row_stride, size_t pixel_stride,
                   size_t channel_stride, const float *packed, size_t out_channels, size_t kernel, size_t stride,
                   size_t padding, const float *bias, float *out, size_t out_height, size_t out_width,
                   size_t first_row, size_t row_count);

/// The portable version, always (for tests: it must equal ck_conv2d_f32 bit for bit).
void ck_conv2d_f32_portable(const float *in, size_t height, size_t width, size_t channels, size_t row_stride,
                            size_t pixel_stride, size_t channel_stride, const float *packed, size_t out_channels,
                            size_t kernel, size_t stride, size_t padding, const float *bias, float *out,
                            size_t out_height, size_t out_width, size_t first_row, size_t row_count);

#endif
