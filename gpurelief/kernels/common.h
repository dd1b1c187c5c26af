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

// Vertices per thread of the per-vertex kernels (grid.cu, normals.cu): 4 vertices of 3 or 2 floats are
// a whole number of 16-byte stores. backend/kernels.py VERTS_PER_THREAD must agree.
#define VERTS_PER_THREAD 4

// Store count floats of v at out: as float4s when the group is whole (count == full, a multiple of 4, and
// out 16-byte aligned, which the callers guarantee), else one float at a time (the grid's last group).
__device__ __forceinline__ void store_floats(float* __restrict__ out, const float* v, int count, int full) {
    if (count == full) {
        float4* q = reinterpret_cast<float4*>(out);
        for (int j = 0; j < full / 4; ++j) {
            float4 w;
            w.x = v[4 * j]; w.y = v[4 * j + 1]; w.z = v[4 * j + 2]; w.w = v[4 * j + 3];
            q[j] = w;
        }
    } else {
        for (int j = 0; j < count; ++j) out[j] = v[j];
    }
}

// The same for 32-bit words (index buffers; uint16 indices are packed two to a word, little-endian).
__device__ __forceinline__ void store_words(unsigned int* __restrict__ out, const unsigned int* v, int count, int full) {
    if (count == full) {
        uint4* q = reinterpret_cast<uint4*>(out);
        for (int j = 0; j < full / 4; ++j) {
            uint4 w;
            w.x = v[4 * j]; w.y = v[4 * j + 1]; w.z = v[4 * j + 2]; w.w = v[4 * j + 3];
            q[j] = w;
        }
    } else {
        for (int j = 0; j < count; ++j) out[j] = v[j];
    }
}
