// JPEG decoding through libjpeg(-turbo), with its error_exit redirected to a longjmp back here.

#include <stdio.h> // jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>

#include "CImageCodecs.h"
#include "codec_support.h"

typedef struct {
    struct jpeg_error_mgr base; // Must be first: libjpeg hands us a pointer to it.
    jmp_buf jump;
    char *errorMessage;
    size_t errorCapacity;
} JPEGErrorManager;

static void jpeg_record_message_and_jump(j_common_ptr cinfo) {
    JPEGErrorManager *manager = (JPEGErrorManager *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    codec_set_error(manager->errorMessage, manager->errorCapacity, "libjpeg: %s", text);
    longjmp(manager->jump, 1);
}

/// libjpeg treats running out of data as a warning and pads the rest of the image with gray.
/// A half-gray frame fed to a segmentation model is worse than an error, so that one warning is
/// promoted to a failure (PIL also refuses truncated JPEGs by default). Other warnings, such as
/// extraneous bytes before a marker, are common in camera output and are ignored as PIL does.
static void jpeg_emit_message(j_common_ptr cinfo, int level) {
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_record_message_and_jump(cinfo);
    }
}

/// PIL's CMYK -> RGB: R = (255 - K) - round(C * (255 - K) / 255), with its MULDIV255 rounding.
static uint8_t cmyk_channel_to_rgb(unsigned ink, unsigned black) {
    unsigned notBlack = 255 - black;
    unsigned product = ink * notBlack + 128;
    unsigned scaled = ((product >> 8) + product) >> 8;
    return (uint8_t)(notBlack - scaled);
}

static void convert_cmyk_row(const uint8_t *cmyk, uint8_t *rgb, uint32_t width, int adobeInverted) {
    for (uint32_t x = 0; x < width; x++) {
        unsigned c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
        // Adobe applications write CMYK inverted (0 = full ink); libjpeg does not undo it.
        if (adobeInverted) {
            c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k;
        }
        rgb[3 * x] = cmyk_channel_to_rgb(c, k);
        rgb[3 * x + 1] = cmyk_channel_to_rgb(m, k);
        rgb[3 * x + 2] = cmyk_channel_to_rgb(y, k);
    }
}

CImageCodecs_Status CImageCodecs_decodeJPEG(const uint8_t *data, size_t size,
                                            uint64_t maxPixels,
                                            uint8_t **outPixels, uint32_t *outWidth, uint32_t *outHeight,
                                            char *errorMessage, size_t errorCapacity) {
    if (outPixels) *outPixels = NULL;
    if (data == NULL || size == 0 || outPixels == NULL || outWidth == NULL || outHeight == NULL) {
        codec_set_error(errorMessage, errorCapacity, "invalid argument");
        return CImageCodecs_InvalidArgument;
    }

    struct jpeg_decompress_struct cinfo;
    JPEGErrorManager errorManager;
    cinfo.err = jpeg_std_error(&errorManager.base);
    errorManager.base.error_exit = jpeg_record_message_and_jump;
    errorManager.base.emit_message = jpeg_emit_message;
    errorManager.errorMessage = errorMessage;
    errorManager.errorCapacity = errorCapacity;

    // Assigned after setjmp and read after a longjmp, so they must be volatile.
    uint8_t *volatile pixels = NULL;
    uint8_t *volatile cmykRow = NULL;
    volatile CImageCodecs_Status failure = CImageCodecs_CorruptData;

    if (setjmp(errorManager.jump)) {
        free(pixels);
        free(cmykRow);
        jpeg_destroy_decompress(&cinfo);
        return failure;
    }

    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    CImageCodecs_Status sizeCheck = codec_check_dimensions(cinfo.image_width, cinfo.image_height, maxPixels,
                                                           errorMessage, errorCapacity);
    if (sizeCheck != CImageCodecs_OK) {
        failure = sizeCheck;
        longjmp(errorManager.jump, 1);
    }

    int isCMYK = 0;
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK: // libjpeg converts YCCK to CMYK; the CMYK -> RGB step is ours.
        cinfo.out_color_space = JCS_CMYK;
        isCMYK = 1;
        break;
    default:
        codec_set_error(errorMessage, errorCapacity, "unsupported JPEG colour space %d",
                        (int)cinfo.jpeg_color_space);
        failure = CImageCodecs_Unsupported;
        longjmp(errorManager.jump, 1);
    }

    jpeg_start_decompress(&cinfo);
    uint32_t width = cinfo.output_width, height = cinfo.output_height;
    if (cinfo.output_components != (isCMYK ? 4 : 3)) {
        codec_set_error(errorMessage, errorCapacity, "unexpected JPEG output component count %d",
                        cinfo.output_components);
        failure = CImageCodecs_Unsupported;
        longjmp(errorManager.jump, 1);
    }

    size_t rowBytes = (size_t)width * 3;
    pixels = (uint8_t *)malloc(rowBytes * height);
    if (isCMYK) cmykRow = (uint8_t *)malloc((size_t)width * 4);
    if (pixels == NULL || (isCMYK && cmykRow == NULL)) {
        codec_set_error(errorMessage, errorCapacity, "out of memory for %ux%u image",
                        (unsigned)width, (unsigned)height);
        failure = CImageCodecs_OutOfMemory;
        longjmp(errorManager.jump, 1);
    }

    while (cinfo.output_scanline < height) {
        uint8_t *rgbRow = pixels + (size_t)cinfo.output_scanline * rowBytes;
        JSAMPROW target = isCMYK ? cmykRow : rgbRow;
        jpeg_read_scanlines(&cinfo, &target, 1);
        if (isCMYK) convert_cmyk_row(cmykRow, rgbRow, width, cinfo.saw_Adobe_marker);
    }

    // jpeg_finish_decompress is skipped on purpose: every scanline is in hand, and all it would
    // add is reading trailing markers, whose problems cannot change the pixels.
    free(cmykRow);
    jpeg_destroy_decompress(&cinfo);
    *outPixels = pixels;
    *outWidth = width;
    *outHeight = height;
    return CImageCodecs_OK;
}
