// The classifier's epilogue, one band of pixels at a time: its logits rows (channels-last, as the
// int8 product writes them) into the channels-first planes the engine hands out, and the class of
// each pixel with the pixels per class, so that the daemon's masks need no full logits map.
#include "ckernels_fp32.h"
#include "ops_dispatch.h"

#include <math.h>

void ck_hwc_rows_to_chw_f32(const float *in, size_t ldi, float *out, size_t plane, size_t first, size_t pixels,
                            size_t channels) {
    // Channel-major loop: each plane is written as one contiguous run (the band's rows are in L1).
    for (size_t c = 0; c < channels; c++) {
        float *dst = out + c * plane + first;
        for (size_t p = 0; p < pixels; p++) dst[p] = in[p * ldi + c];
    }
}

// The portable version; AArch64 runs argmax_count_f32_neon.c's, which picks the same classes.
void ck_argmax_count_f32_portable(const float *in, size_t ldi, size_t pixels, size_t classes, uint8_t *mask, uint32_t *counts) {
    for (size_t p = 0; p < pixels; p++) {
        const float *x = in + p * ldi;
        // Exactly SegmentationMask(logits:)'s rule: from −∞, a class wins only when strictly larger,
        // so the first maximum wins (as torch.argmax) and NaNs never win.
        float best = -INFINITY;
        uint8_t winner = 0;
        for (size_t c = 0; c < classes; c++)
            if (x[c] > best) {
                best = x[c];
                winner = (uint8_t)c;
            }
        mask[p] = winner;
        counts[winner]++;
    }
}
