// PNG decoding through libpng's classic API.
//
// The simplified png_image API is not used because for 16-bit input it converts to 8-bit through
// a linear-light/sRGB round trip, whereas PIL (the reference our models were trained against)
// keeps the high byte. The classic transforms give exactly PIL's values.

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "CImageCodecs.h"
#include "codec_support.h"

/// State reachable from libpng callbacks via png_get_error_ptr / png_get_io_ptr.
typedef struct {
    const uint8_t *data;
    size_t size;
    size_t offset;
    char *errorMessage;
    size_t errorCapacity;
} PNGReadContext;

static void png_decode_error(png_structp png, png_const_charp message) {
    PNGReadContext *context = (PNGReadContext *)png_get_error_ptr(png);
    codec_set_error(context->errorMessage, context->errorCapacity, "libpng: %s", message);
    png_longjmp(png, 1);
}

/// Warnings (e.g. a bad sRGB/iCCP chunk) do not stop decoding; staying quiet keeps stderr clean.
static void png_decode_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void png_read_from_memory(png_structp png, png_bytep out, png_size_t length) {
    PNGReadContext *context = (PNGReadContext *)png_get_io_ptr(png);
    if (length > context->size - context->offset) {
        png_error(png, "PNG data is truncated");
    }
    memcpy(out, context->data + context->offset, length);
    context->offset += length;
}

CImageCodecs_Status CImageCodecs_decodePNG(const uint8_t *data, size_t size,
                                           uint64_t maxPixels,
                                           uint8_t **outPixels, uint32_t *outWidth, uint32_t *outHeight,
                                           char *errorMessage, size_t errorCapacity) {
    if (outPixels) *outPixels = NULL;
    if (data == NULL || outPixels == NULL || outWidth == NULL || outHeight == NULL) {
        codec_set_error(errorMessage, errorCapacity, "invalid argument");
        return CImageCodecs_InvalidArgument;
    }
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        codec_set_error(errorMessage, errorCapacity, "missing PNG signature");
        return CImageCodecs_CorruptData;
    }

    PNGReadContext context = {data, size, 0, errorMessage, errorCapacity};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &context,
                                             png_decode_error, png_decode_warning);
    if (png == NULL) {
        codec_set_error(errorMessage, errorCapacity, "libpng: cannot create read struct");
        return CImageCodecs_OutOfMemory;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        codec_set_error(errorMessage, errorCapacity, "libpng: cannot create info struct");
        return CImageCodecs_OutOfMemory;
    }

    // Assigned after setjmp and read after a longjmp, so they must be volatile.
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    volatile CImageCodecs_Status failure = CImageCodecs_CorruptData;

    if (setjmp(png_jmpbuf(png))) {
        free(pixels);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return failure;
    }

    png_set_read_fn(png, &context, png_read_from_memory);
    png_read_info(png, info);

    png_uint_32 width = 0, height = 0;
    int bitDepth = 0, colorType = 0;
    png_get_IHDR(png, info, &width, &height, &bitDepth, &colorType, NULL, NULL, NULL);

    CImageCodecs_Status sizeCheck = codec_check_dimensions(width, height, maxPixels, errorMessage, errorCapacity);
    if (sizeCheck != CImageCodecs_OK) {
        failure = sizeCheck;
        png_longjmp(png, 1);
    }

    // Normalise every colour type to RGB8. Transparency is dropped rather than expanded,
    // matching PIL's convert("RGB").
    if (colorType == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (colorType == PNG_COLOR_TYPE_GRAY && bitDepth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bitDepth == 16) png_set_strip_16(png);
    // Palette expansion also turns tRNS into an alpha channel, so tRNS needs stripping too.
    if ((colorType & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) {
        png_set_strip_alpha(png);
    }
    if (colorType == PNG_COLOR_TYPE_GRAY || colorType == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    size_t rowBytes = (size_t)width * 3;
    if (png_get_rowbytes(png, info) != rowBytes) {
        codec_set_error(errorMessage, errorCapacity,
                        "libpng: unexpected row size after conversion to RGB8");
        failure = CImageCodecs_Unsupported;
        png_longjmp(png, 1);
    }

    pixels = (uint8_t *)malloc(rowBytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (pixels == NULL || rows == NULL) {
        codec_set_error(errorMessage, errorCapacity, "out of memory for %ux%u image",
                        (unsigned)width, (unsigned)height);
        failure = CImageCodecs_OutOfMemory;
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + (size_t)y * rowBytes;

    // png_read_end is deliberately skipped: chunks after the image data (and a missing IEND)
    // do not affect the pixels, and PIL accepts such files too.
    png_read_image(png, rows);

    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    *outPixels = pixels;
    *outWidth = width;
    *outHeight = height;
    return CImageCodecs_OK;
}
