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

// The per-vertex and index kernels give each thread one 16-byte piece of the output (4 floats or 4 uint32,
// 8 uint16): neighbouring threads write neighbouring pieces, so each warp's store covers 512 contiguous bytes.
// The caller (kernel_ops) allocates the outputs, 16-byte aligned. backend/kernels.py STORE_BYTES must agree.

// Store v[0..count) at out: one 16-byte vector V (float4, uint4) when the piece is whole (count == 4), else one
// element at a time (the last piece of an array whose length is not a multiple of 4).
template <typename V, typename T>
__device__ __forceinline__ void store_piece4(T* __restrict__ out, const T* v, int count) {
    if (count == 4) {
        V w;
        w.x = v[0]; w.y = v[1]; w.z = v[2]; w.w = v[3];
        *reinterpret_cast<V*>(out) = w;
    } else {
        for (int j = 0; j < count; ++j) out[j] = v[j];
    }
}

__device__ __forceinline__ void store_piece(float* __restrict__ out, const float* v, int count) {
    store_piece4<float4>(out, v, count);
}

__device__ __forceinline__ void store_piece(unsigned int* __restrict__ out, const unsigned int* v, int count) {
    store_piece4<uint4>(out, v, count);
}

// uint16: 8 to a piece, packed two to a word, little-endian (as the GPU and x86 store them)
__device__ __forceinline__ void store_piece(unsigned short* __restrict__ out, const unsigned short* v, int count) {
    if (count == 8) {
        uint4 w;
        w.x = (unsigned int)v[0] | ((unsigned int)v[1] << 16);
        w.y = (unsigned int)v[2] | ((unsigned int)v[3] << 16);
        w.z = (unsigned int)v[4] | ((unsigned int)v[5] << 16);
        w.w = (unsigned int)v[6] | ((unsigned int)v[7] << 16);
        *reinterpret_cast<uint4*>(out) = w;
    } else {
        for (int j = 0; j < count; ++j) out[j] = v[j];
    }
}
