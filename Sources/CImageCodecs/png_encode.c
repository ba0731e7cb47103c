// PNG encoding (8-bit gray or RGB) to a file or to memory. Both destinations share one encoder
// that writes through a callback, so the setjmp guard and libpng setup exist once.

#include <png.h>
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CImageCodecs.h"
#include "codec_support.h"

typedef struct {
    char *errorMessage;
    size_t errorCapacity;
} PNGWriteErrorContext;

typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} PNGMemorySink;

static void png_encode_error(png_structp png, png_const_charp message) {
    PNGWriteErrorContext *context = (PNGWriteErrorContext *)png_get_error_ptr(png);
    codec_set_error(context->errorMessage, context->errorCapacity, "libpng: %s", message);
    png_longjmp(png, 1);
}

static void png_encode_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

static void png_write_to_file(png_structp png, png_bytep bytes, png_size_t length) {
    FILE *file = (FILE *)png_get_io_ptr(png);
    if (fwrite(bytes, 1, length, file) != length) png_error(png, "write to file failed");
}

static void png_flush_file(png_structp png) {
    FILE *file = (FILE *)png_get_io_ptr(png);
    if (fflush(file) != 0) png_error(png, "flush to file failed");
}

static void png_write_to_memory(png_structp png, png_bytep bytes, png_size_t length) {
    PNGMemorySink *sink = (PNGMemorySink *)png_get_io_ptr(png);
    if (length > sink->capacity - sink->size) {
        size_t capacity = sink->capacity ? sink->capacity : 4096;
        while (length > capacity - sink->size) {
            if (capacity > SIZE_MAX / 2) png_error(png, "encoded PNG too large");
            capacity *= 2;
        }
        uint8_t *grown = (uint8_t *)realloc(sink->data, capacity);
        if (grown == NULL) png_error(png, "out of memory for encoded PNG");
        sink->data = grown;
        sink->capacity = capacity;
    }
    memcpy(sink->data + sink->size, bytes, length);
    sink->size += length;
}

static void png_flush_nothing(png_structp png) { (void)png; }

static CImageCodecs_Status validate_encode_arguments(const uint8_t *pixels, uint32_t width, uint32_t height,
                                                     uint32_t channels,
                                                     char *errorMessage, size_t errorCapacity) {
    if (pixels == NULL) {
        codec_set_error(errorMessage, errorCapacity, "invalid argument: NULL pixels");
        return CImageCodecs_InvalidArgument;
    }
    if (channels != 1 && channels != 3) {
        codec_set_error(errorMessage, errorCapacity,
                        "invalid argument: %u channels (expected 1 or 3)", channels);
        return CImageCodecs_InvalidArgument;
    }
    CImageCodecs_Status status = codec_check_dimensions(width, height, 0, errorMessage, errorCapacity);
    return status == CImageCodecs_CorruptData ? CImageCodecs_InvalidArgument : status;
}

/// Runs libpng over `pixels`, sending the bytes to `writeFn(io, ...)`.
static CImageCodecs_Status encode_png(const uint8_t *pixels, uint32_t width, uint32_t height,
                                      uint32_t channels, void *io, png_rw_ptr writeFn, png_flush_ptr flushFn,
                                      char *errorMessage, size_t errorCapacity) {
    PNGWriteErrorContext context = {errorMessage, errorCapacity};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &context,
                                              png_encode_error, png_encode_warning);
    if (png == NULL) {
        codec_set_error(errorMessage, errorCapacity, "libpng: cannot create write struct");
        return CImageCodecs_OutOfMemory;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        codec_set_error(errorMessage, errorCapacity, "libpng: cannot create info struct");
        return CImageCodecs_OutOfMemory;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return CImageCodecs_IOError;
    }

    png_set_write_fn(png, io, writeFn, flushFn);
    int colorType = channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB;
    png_set_IHDR(png, info, width, height, 8, colorType, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t rowBytes = (size_t)width * channels;
    for (uint32_t y = 0; y < height; y++) {
        // libpng's row API takes a non-const pointer but does not modify the row.
        png_write_row(png, (png_const_bytep)(pixels + (size_t)y * rowBytes));
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return CImageCodecs_OK;
}

CImageCodecs_Status CImageCodecs_encodePNGFile(const char *path,
                                               const uint8_t *pixels, uint32_t width, uint32_t height,
                                               uint32_t channels,
                                               char *errorMessage, size_t errorCapacity) {
    if (path == NULL) {
        codec_set_error(errorMessage, errorCapacity, "invalid argument: NULL path");
        return CImageCodecs_InvalidArgument;
    }
    CImageCodecs_Status status = validate_encode_arguments(pixels, width, height, channels,
                                                           errorMessage, errorCapacity);
    if (status != CImageCodecs_OK) return status;

    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        codec_set_error(errorMessage, errorCapacity, "cannot open for writing: %s", strerror(errno));
        return CImageCodecs_IOError;
    }
    status = encode_png(pixels, width, height, channels, file, png_write_to_file, png_flush_file,
                        errorMessage, errorCapacity);
    if (fclose(file) != 0 && status == CImageCodecs_OK) {
        codec_set_error(errorMessage, errorCapacity, "close failed: %s", strerror(errno));
        status = CImageCodecs_IOError;
    }
    // A truncated PNG left behind would look like a valid output to the next tool in the chain.
    if (status != CImageCodecs_OK) remove(path);
    return status;
}

CImageCodecs_Status CImageCodecs_encodePNGMemory(const uint8_t *pixels, uint32_t width, uint32_t height,
                                                 uint32_t channels,
                                                 uint8_t **outData, size_t *outSize,
                                                 char *errorMessage, size_t errorCapacity) {
    if (outData) *outData = NULL;
    if (outSize) *outSize = 0;
    if (outData == NULL || outSize == NULL) {
        codec_set_error(errorMessage, errorCapacity, "invalid argument: NULL output");
        return CImageCodecs_InvalidArgument;
    }
    CImageCodecs_Status status = validate_encode_arguments(pixels, width, height, channels,
                                                           errorMessage, errorCapacity);
    if (status != CImageCodecs_OK) return status;

    PNGMemorySink sink = {NULL, 0, 0};
    status = encode_png(pixels, width, height, channels, &sink, png_write_to_memory, png_flush_nothing,
                        errorMessage, errorCapacity);
    if (status != CImageCodecs_OK) {
        free(sink.data);
        return status;
    }
    *outData = sink.data;
    *outSize = sink.size;
    return CImageCodecs_OK;
}
