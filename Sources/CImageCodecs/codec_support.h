#ifndef CIMAGECODECS_SUPPORT_H
#define CIMAGECODECS_SUPPORT_H

// Helpers shared by the codec wrappers; not part of the public header.

#include <stddef.h>
#include <stdint.h>
#include "CImageCodecs.h"

/// Writes a printf-style message into the caller's buffer (truncating, always NUL-terminated).
/// Tolerates a NULL buffer or zero capacity so callers may ignore messages.
void codec_set_error(char *buffer, size_t capacity, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/// Returns CImageCodecs_OK when width x height is decodable and within maxPixels (0: only the
/// fixed limits), otherwise CImageCodecs_TooLarge (or CorruptData for a zero side) with the message
/// filled in. Called with the header's dimensions, before any pixel memory is allocated.
CImageCodecs_Status codec_check_dimensions(uint64_t width, uint64_t height, uint64_t maxPixels,
                                           char *buffer, size_t capacity);

#endif
