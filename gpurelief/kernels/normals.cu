// Per-vertex normals of the displaced grid by central differences (one-sided at the borders).
// ref: gpurelief.backend.numpy_ops.grid_normals
// 1-D launch over groups of 4 vertices (vertex k = row * gw + col): thread t writes three 16-byte pieces
// (common.h store_piece), floats 12t..12t+11 of the flat (n, 3) table. Operation order mirrors numpy_ops exactly (bit-exact with --fmad=false).
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
    // Thread t: vertices 4t..4t+3, i.e. three whole pieces (48 bytes). One piece per thread, as the other
    // kernels do, made this one slower on an H200 (0.093 vs 0.061 ms at 3840x2160: a third of the threads
    // then compute two normals, with IEEE division and square root; bench/results/README.md).
    long long n = (long long)gh * gw;
    long long k0 = 4 * global_index_1d();
    if (k0 >= n) return;
    int m = (n - k0 < 4) ? (int)(n - k0) : 4;
    int row = (int)(k0 / gw);
    int col = (int)(k0 - (long long)row * gw);
    float v[12];
    for (int j = 0; j < 4; ++j) {
        if (j < m) normal_at(heights, gh, gw, row, col, relief, dx, two_dx, dy, two_dy, v + 3 * j);
        if (++col == gw) { col = 0; ++row; }
    }
    float* out = normals + 3 * k0;
    if (m == 4) {
        store_piece(out, v, 4);
        store_piece(out + 4, v + 4, 4);
        store_piece(out + 8, v + 8, 4);
    } else {
        for (int j = 0; j < 3 * m; ++j) out[j] = v[j];
    }
}
