// Displacement of the grid to vertex positions, and texture coordinates at sample centres.
// ref: gpurelief.backend.numpy_ops.grid_positions
// ref: gpurelief.backend.numpy_ops.grid_uvs
// 1-D launch over groups of VERTS_PER_THREAD consecutive vertices (vertex k = row * gw + col): each thread
// writes its group with 16-byte stores (positions 48 B = 3 float4, UVs 32 B = 2 float4), which keeps the
// stores whole-sector on the GPU; the last group of a grid whose size is not a multiple of 4 is written
// per float. The output arrays are allocated by the caller (kernel_ops) and 16-byte aligned.
#include "common.h"

extern "C" __global__ void grid_positions_f32(
    const float* __restrict__ heights, float* __restrict__ positions, int gh, int gw,
    float cx, float cy, float dx, float dy, float relief)
{
    // cx = float32((gw - 1) * 0.5), cy = float32((gh - 1) * 0.5): rounded once on the host, like numpy
    long long n = (long long)gh * gw;
    long long k0 = VERTS_PER_THREAD * global_index_1d();
    if (k0 >= n) return;
    int m = (n - k0 < VERTS_PER_THREAD) ? (int)(n - k0) : VERTS_PER_THREAD;
    int row = (int)(k0 / gw);
    int col = (int)(k0 - (long long)row * gw);
    float v[3 * VERTS_PER_THREAD];
    for (int j = 0; j < VERTS_PER_THREAD; ++j) {
        if (j < m) {
            v[3 * j] = ((float)col - cx) * dx;
            v[3 * j + 1] = (cy - (float)row) * dy;
            v[3 * j + 2] = heights[k0 + j] * relief;
        }
        if (++col == gw) { col = 0; ++row; }
    }
    store_floats(positions + 3 * k0, v, 3 * m, 3 * VERTS_PER_THREAD);
}

extern "C" __global__ void grid_uvs_f32(float* __restrict__ uvs, int gh, int gw)
{
    long long n = (long long)gh * gw;
    long long k0 = VERTS_PER_THREAD * global_index_1d();
    if (k0 >= n) return;
    int m = (n - k0 < VERTS_PER_THREAD) ? (int)(n - k0) : VERTS_PER_THREAD;
    int row = (int)(k0 / gw);
    int col = (int)(k0 - (long long)row * gw);
    float v[2 * VERTS_PER_THREAD];
    for (int j = 0; j < VERTS_PER_THREAD; ++j) {
        if (j < m) {
            v[2 * j] = ((float)col + 0.5f) / (float)gw;
            v[2 * j + 1] = ((float)row + 0.5f) / (float)gh;
        }
        if (++col == gw) { col = 0; ++row; }
    }
    store_floats(uvs + 2 * k0, v, 2 * m, 2 * VERTS_PER_THREAD);
}
