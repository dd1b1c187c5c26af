// Heightfield conditioning: per-pixel part of the depth -> heights transform.
// ref: gpurelief.backend.numpy_ops.condition_heights
// The percentile clamp limits (lo, span) and the fill value for non-finite samples are computed
// by the caller (cupy_ops); Gaussian smoothing, when asked for, runs between two launches
// (CONDITION_NORMALIZE | CONDITION_INVERT first, CONDITION_GAMMA | CONDITION_CONTRAST after).
#include "common.h"

#define CONDITION_NORMALIZE 1  // fill non-finite with `fill`, then clip((d - lo) / span, 0, 1)
#define CONDITION_FLAT 2       // span is not > 0: every height is 0 (a flat plate)
#define CONDITION_INVERT 4     // h = 1 - h
#define CONDITION_GAMMA 8      // h = h ** gamma
#define CONDITION_CONTRAST 16  // h = clip(0.5 + (h - 0.5) * contrast, 0, 1)

extern "C" __global__ void condition_heights_f32(
    const float* __restrict__ depth, float* __restrict__ heights, long long n,
    float fill, float lo, float span, float gamma, float contrast, int flags)
{
    long long i = global_index_1d();
    if (i >= n) return;
    float h = depth[i];
    if (flags & CONDITION_NORMALIZE) {
        if (flags & CONDITION_FLAT) {
            h = 0.0f;
        } else {
            if (!isfinite(h)) h = fill;
            h = np_clip((h - lo) / span, 0.0f, 1.0f);
        }
    }
    if (flags & CONDITION_INVERT) h = 1.0f - h;
    if (flags & CONDITION_GAMMA) {
        // numpy's float32 power (libm powf) rounds a double-precision result; do the same, so the
        // two agree to the last bit except in rare double-rounding ties (see README tolerance).
        h = (float)pow((double)h, (double)gamma);
    }
    if (flags & CONDITION_CONTRAST) h = np_clip(0.5f + (h - 0.5f) * contrast, 0.0f, 1.0f);
    heights[i] = h;
}
