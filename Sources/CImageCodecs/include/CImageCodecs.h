#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

// PNG and JPEG decoding/encoding for MTLSegImage.
//
// libpng and libjpeg report errors by longjmp, which would unwind straight through Swift frames
// (undefined behaviour, and no way to turn it into a thrown error). Every call into those libraries
// therefore lives here, behind a setjmp guard, and comes back to Swift as a status code plus a
// human-readable message written into a caller-provided buffer.
//
// Ownership: buffers returned through `outPixels` / `outData` are allocated here and must be
// released with CImageCodecs_free. On failure they are set to NULL and nothing needs freeing.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CImageCodecs_OK = 0,
    /// A NULL pointer, zero size or unsupported channel count was passed in.
    CImageCodecs_InvalidArgument = 1,
    /// The codec rejected the data (bad signature, bad CRC, truncated, ...). The message says why.
    CImageCodecs_CorruptData = 2,
    /// Well-formed but not something we decode (e.g. an unusual JPEG colour space).
    CImageCodecs_Unsupported = 3,
    /// The declared dimensions exceed CImageCodecs_MaxSide / CImageCodecs_MaxPixels.
    CImageCodecs_TooLarge = 4,
    CImageCodecs_OutOfMemory = 5,
    /// The output file could not be opened or written.
    CImageCodecs_IOError = 6,
} CImageCodecs_Status;

/// Largest accepted width or height. Headers are attacker-controlled; checking them before
/// allocating keeps a 20-byte file from requesting gigabytes.
#define CImageCodecs_MaxSide 32768u
/// Largest accepted width * height (2^28 pixels, 768 MiB of RGB8).
#define CImageCodecs_MaxPixels (1u << 28)

/// Decodes a PNG held in memory to interleaved 8-bit RGB, row-major, no padding.
/// Palette, grayscale (any bit depth), 16-bit and interlaced images are converted; an alpha channel
/// (or tRNS transparency) is dropped, not composited, as PIL's convert("RGB") does. 16-bit samples
/// keep their high byte, also as PIL does.
/// `maxPixels` (0: no budget beyond the fixed limits) is checked against the header's dimensions
/// before any pixel memory is allocated.
CImageCodecs_Status CImageCodecs_decodePNG(const uint8_t *data, size_t size, uint64_t maxPixels,
                                           uint8_t **outPixels, uint32_t *outWidth, uint32_t *outHeight,
                                           char *errorMessage, size_t errorCapacity);

/// Decodes a JPEG held in memory to interleaved 8-bit RGB, row-major, no padding.
/// YCbCr, RGB and grayscale JPEGs are converted by libjpeg-turbo; CMYK/YCCK (Adobe) JPEGs are
/// converted with PIL's formula R = (255-C)(255-K)/255. A truncated stream is an error rather than
/// libjpeg's default of padding with gray.
/// `maxPixels` as for CImageCodecs_decodePNG.
CImageCodecs_Status CImageCodecs_decodeJPEG(const uint8_t *data, size_t size, uint64_t maxPixels,
                                            uint8_t **outPixels, uint32_t *outWidth, uint32_t *outHeight,
                                            char *errorMessage, size_t errorCapacity);

/// Encodes 8-bit pixels (channels = 1 for gray, 3 for RGB; interleaved, row-major, no padding)
/// as a PNG file at `path`. On failure the partially written file is removed.
CImageCodecs_Status CImageCodecs_encodePNGFile(const char *path,
                                               const uint8_t *pixels, uint32_t width, uint32_t height,
                                               uint32_t channels,
                                               char *errorMessage, size_t errorCapacity);

/// Same as CImageCodecs_encodePNGFile but into a buffer released with CImageCodecs_free.
CImageCodecs_Status CImageCodecs_encodePNGMemory(const uint8_t *pixels, uint32_t width, uint32_t height,
                                                 uint32_t channels,
                                                 uint8_t **outData, size_t *outSize,
                                                 char *errorMessage, size_t errorCapacity);

/// Releases a buffer returned by this module. NULL is allowed.
void CImageCodecs_free(void *buffer);

#ifdef __cplusplus
}
#endif

#endif
