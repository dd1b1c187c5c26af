// Per-vertex normals of the displaced grid by central differences (one-sided at the borders).
// ref: gpurelief.backend.numpy_ops.grid_normals
// 2-D launch: x = column, y = row. Operation order mirrors numpy_ops exactly (bit-exact with --fmad=false).
#include "common.h"

extern "C" __global__ void grid_normals_f32(
    const float* __restrict__ heights, float* __restrict__ normals, int gh, int gw,
    float relief, float dx, float two_dx, float dy, float two_dy)
{
    // dx, two_dx = float32(dx), float32(2 * dx) rounded on the host (same for dy), like numpy
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw || row >= gh) return;
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
    float* n = normals + 3 * ((long long)row * gw + col);
    n[0] = -gx * inv_len;
    n[1] = -gy * inv_len;
    n[2] = inv_len;
}
