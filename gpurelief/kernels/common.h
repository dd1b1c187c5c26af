// Shared by every kernel family. Kept free of headers so that NVRTC (no <cmath>), nvcc and the
// host shim used by the CPU tests (tests/kernel_host_shim.h) all accept the same source.
#pragma once

// Flat index of this thread in a 1-D launch; 64-bit so grids past 2^31 threads stay correct.
__device__ __forceinline__ long long global_index_1d() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}

// numpy.clip semantics for float32: a NaN stays NaN, otherwise max(x, lo) then min(., hi).
__device__ __forceinline__ float np_clip(float x, float lo, float hi) {
    if (x != x) return x;
    x = (x > lo) ? x : lo;
    return (x < hi) ? x : hi;
}
