// Per-vertex normals of the displaced grid by central differences (one-sided at the borders).
// ref: gpurelief.backend.numpy_ops.grid_normals
// 1-D launch over groups of VERTS_PER_THREAD consecutive vertices (vertex k = row * gw + col), written with
// 16-byte stores (common.h store_floats). Operation order mirrors numpy_ops exactly (bit-exact with --fmad=false).
#include "common.h"

__device__ __forceinline__ void normal_at(
    const float* __restrict__ heights, int gh, int gw, int row, int col,
    float relief, float dx, float two_dx, float dy, float two_dy, float* n)
{
    const float* line = heights + (long long)row * gw;
    float gx;
    if (col == 0) {
        gx = (line[1] * relief - line[0] * relief) / dx;
    } else if (col == gw - 1) {
        gx = (line[gw - 1] * relief - line[gw - 2] * relief) / dx;
    } else {
        gx = (line[col + 1] * relief - line[col - 1] * relief) / two_dx;
    }
    // y is up, rows grow downward: dz/dy = -dz/drow
    float gy;
    if (row == 0) {
        gy = (heights[col] * relief - heights[(long long)gw + col] * relief) / dy;
    } else if (row == gh - 1) {
        gy = (heights[(long long)(gh - 2) * gw + col] * relief - heights[(long long)(gh - 1) * gw + col] * relief) / dy;
    } else {
        gy = (heights[(long long)(row - 1) * gw + col] * relief - heights[(long long)(row + 1) * gw + col] * relief) / two_dy;
    }
    float inv_len = 1.0f / sqrtf(gx * gx + gy * gy + 1.0f);
    n[0] = -gx * inv_len;
    n[1] = -gy * inv_len;
    n[2] = inv_len;
}

extern "C" __global__ void grid_normals_f32(
    const float* __restrict__ heights, float* __restrict__ normals, int gh, int gw,
    float relief, float dx, float two_dx, float dy, float two_dy)
{
    // dx, two_dx = float32(dx), float32(2 * dx) rounded on the host (same for dy), like numpy
    long long n = (long long)gh * gw;
    long long k0 = VERTS_PER_THREAD * global_index_1d();
    if (k0 >= n) return;
    int m = (n - k0 < VERTS_PER_THREAD) ? (int)(n - k0) : VERTS_PER_THREAD;
    int row = (int)(k0 / gw);
    int col = (int)(k0 - (long long)row * gw);
    float v[3 * VERTS_PER_THREAD];
    for (int j = 0; j < VERTS_PER_THREAD; ++j) {
        if (j < m) normal_at(heights, gh, gw, row, col, relief, dx, two_dx, dy, two_dy, v + 3 * j);
        if (++col == gw) { col = 0; ++row; }
    }
    store_floats(normals + 3 * k0, v, 3 * m, 3 * VERTS_PER_THREAD);
}
