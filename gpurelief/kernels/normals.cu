// Per-vertex normals of the displaced grid by central differences (one-sided at the borders).
// ref: gpurelief.backend.numpy_ops.grid_normals
// 1-D launch over 16-byte pieces of the output (common.h): thread t writes floats 4t..4t+3 of the flat (n, 3)
// table (vertex k = row * gw + col). Operation order mirrors numpy_ops exactly (bit-exact with --fmad=false).
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
    // A piece (floats 4t..4t+3 of the flat (n, 3) table) spans one or two vertices: their normals, then the
    // piece's components of them.
    long long total = 3LL * gh * gw;
    long long f0 = 4 * global_index_1d();
    if (f0 >= total) return;
    int m = (total - f0 < 4) ? (int)(total - f0) : 4;
    long long k = f0 / 3;
    int c = (int)(f0 - 3 * k);
    int row = (int)(k / gw);
    int col = (int)(k - (long long)row * gw);
    float nv[6];
    normal_at(heights, gh, gw, row, col, relief, dx, two_dx, dy, two_dy, nv);
    if (c + m > 3) {
        if (++col == gw) { col = 0; ++row; }
        normal_at(heights, gh, gw, row, col, relief, dx, two_dx, dy, two_dy, nv + 3);
    }
    float v[4];
    for (int j = 0; j < m; ++j) v[j] = nv[c + j];
    store_piece(normals + f0, v, m);
}
