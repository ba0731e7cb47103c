#include "codec_support.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void codec_set_error(char *buffer, size_t capacity, const char *format, ...) {
    if (buffer == NULL || capacity == 0) return;
    va_list args;
    va_start(args, format);
    vsnprintf(buffer, capacity, format, args);
    va_end(args);
}

CImageCodecs_Status codec_check_dimensions(uint64_t width, uint64_t height, uint64_t maxPixels,
                                           char *buffer, size_t capacity) {
    if (width == 0 || height == 0) {
        codec_set_error(buffer, capacity, "image has zero size (%llux%llu)",
                        (unsigned long long)width, (unsigned long long)height);
        return CImageCodecs_CorruptData;
    }
    if (width > CImageCodecs_MaxSide || height > CImageCodecs_MaxSide ||
        width * height > CImageCodecs_MaxPixels) {
        codec_set_error(buffer, capacity,
                        "image dimensions %llux%llu exceed the limit (%u per side, %u pixels)",
                        (unsigned long long)width, (unsigned long long)height,
                        CImageCodecs_MaxSide, CImageCodecs_MaxPixels);
        return CImageCodecs_TooLarge;
    }
    if (maxPixels != 0 && width * height > maxPixels) {
        codec_set_error(buffer, capacity, "image %llux%llu (%llu pixels) is over the pixel budget of %llu pixels",
                        (unsigned long long)width, (unsigned long long)height,
                        (unsigned long long)(width * height), (unsigned long long)maxPixels);
        return CImageCodecs_TooLarge;
    }
    return CImageCodecs_OK;
}

void CImageCodecs_free(void *buffer) { free(buffer); }
