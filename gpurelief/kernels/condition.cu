// Heightfield conditioning: per-pixel part of the depth -> heights transform.
// ref: gpurelief.backend.numpy_ops.condition_heights
// The normalisation reads its parameters from device memory (params: lo, span, fill, flat, bad, scale), so that
// without a percentile clamp nothing waits on the host: range_partials_f32 reads the map once, the caller
// reduces the partials with one device reduction (min along rows), and range_params_f32 turns them into
// params the way numpy_ops does. With a percentile clamp the caller computes params on the host.
// Gaussian smoothing, when asked for, runs between two launches (CONDITION_NORMALIZE | CONDITION_INVERT
// first, CONDITION_GAMMA | CONDITION_CONTRAST after).
#include "common.h"

#define CONDITION_NORMALIZE 1  // fill non-finite with params[2], then clip((d * scale - lo) / span, 0, 1), or 0 if flat
#define CONDITION_INVERT 4     // h = 1 - h
#define CONDITION_GAMMA 8      // h = h ** gamma
#define CONDITION_CONTRAST 16  // h = clip(0.5 + (h - 0.5) * contrast, 0, 1)

// params of the normalisation, as the caller and range_params_f32 write them
#define PARAM_LO 0
#define PARAM_SPAN 1
#define PARAM_FILL 2
#define PARAM_FLAT 3  // 1: span is not > 0, every height is 0 (a flat plate)
#define PARAM_BAD 4   // 1: some sample is not finite (the caller's percentile path reads it)
#define PARAM_SCALE 5 // 1, or 0.5 when hi - lo overflows float32 (a map spanning more than FLOAT32_MAX): lo and
                      // span are then those of the halved map (halving is exact), so the heights stay finite

extern "C" __global__ void condition_heights_f32(
    const float* __restrict__ depth, float* __restrict__ heights, long long n,
    const float* __restrict__ params, float gamma, float contrast, int flags)
{
    long long i = global_index_1d();
    if (i >= n) return;
    float h = depth[i];
    if (flags & CONDITION_NORMALIZE) {
        if (params[PARAM_FLAT] != 0.0f) {
            h = 0.0f;
        } else {
            if (!isfinite(h)) h = params[PARAM_FILL];
            h = np_clip((h * params[PARAM_SCALE] - params[PARAM_LO]) / params[PARAM_SPAN], 0.0f, 1.0f);
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
// i < n; thread t takes i = t, t + threads, t + 2 * threads, ... (coalesced for stride 1) and writes three rows of
// partials, parts[r * threads + t], each to be reduced by its minimum (so the caller needs one reduction):
//   0: min of its finite samples   1: -(max of its finite samples)   (FLOAT32_MAX when it saw none)
//   2: -1 if a sample was not finite, else 0
// min and max are exact in any order.
extern "C" __global__ void range_partials_f32(
    const float* __restrict__ values, long long n, long long stride, long long offset, long long threads,
    float* __restrict__ parts)
{
    long long t = global_index_1d();
    if (t >= threads) return;
    float lo = FLOAT32_MAX, hi = -FLOAT32_MAX, bad = 0.0f;
    for (long long i = t; i < n; i += threads) {
        float x = values[offset + i * stride];
        if (!isfinite(x)) {
            bad = -1.0f;
        } else {
            lo = (x < lo) ? x : lo;
            hi = (x > hi) ? x : hi;
        }
    }
    parts[t] = lo;
    parts[threads + t] = -hi;
    parts[2 * threads + t] = bad;
}

// One thread: the three reduced rows of range_partials_f32 -> params, as numpy_ops.condition_heights decides
// them: lo, hi = the finite min and max; non-finite samples (NaN, +-inf: no data) take fill = lo (0 when no
// sample is finite: then the map is flat).
extern "C" __global__ void range_params_f32(const float* __restrict__ reduced, float* __restrict__ params)
{
    if (global_index_1d() != 0) return;
    float lo = reduced[0], hi = -reduced[1];
    bool bad = reduced[2] != 0.0f;
    if (!(hi >= lo)) lo = hi = 0.0f;  // no finite sample
    float fill = lo;
    float span = hi - lo, scale = 1.0f;
    if (!isfinite(span)) {  // as numpy_ops.normalization
        scale = 0.5f;
        lo *= 0.5f;
        span = hi * 0.5f - lo;
    }
    params[PARAM_LO] = lo;
    params[PARAM_SPAN] = span;
    params[PARAM_FILL] = fill;
    params[PARAM_FLAT] = (span > 0.0f) ? 0.0f : 1.0f;
    params[PARAM_BAD] = bad ? 1.0f : 0.0f;
    params[PARAM_SCALE] = scale;
}
