// Heightfield conditioning: per-pixel part of the depth -> heights transform.
// ref: gpurelief.backend.numpy_ops.condition_heights
// The percentile clamp limits (lo, span) and the fill value for non-finite samples are computed
// by the caller (kernel_ops; without a percentile clamp, lo and hi come from one read of the map by
// minmax_partials_f32); Gaussian smoothing, when asked for, runs between two launches
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

#define FLOAT32_MAX 3.402823466e+38f

// One read of a map (or of one column of a row-major table) for its range: samples values[offset + i * stride],
// i < n; thread t takes i = t, t + threads, t + 2 * threads, ... (coalesced for stride 1) and writes, at
// parts[t], parts[threads + t] and parts[2 * threads + t], the min and max of its finite samples (FLOAT32_MAX /
// -FLOAT32_MAX when it saw none) and how many samples were not finite (as a float: exact, a thread takes far
// fewer than 2^24). The caller reduces the partials on the host; min and max are exact in any order.
extern "C" __global__ void minmax_partials_f32(
    const float* __restrict__ values, long long n, long long stride, long long offset, long long threads,
    float* __restrict__ parts)
{
    long long t = global_index_1d();
    if (t >= threads) return;
    float lo = FLOAT32_MAX, hi = -FLOAT32_MAX, bad = 0.0f;
    for (long long i = t; i < n; i += threads) {
        float x = values[offset + i * stride];
        if (!isfinite(x)) {
            bad += 1.0f;
        } else {
            lo = (x < lo) ? x : lo;
            hi = (x > hi) ? x : hi;
        }
    }
    parts[t] = lo;
    parts[threads + t] = hi;
    parts[2 * threads + t] = bad;
}
