// Displacement of the grid to vertex positions, and texture coordinates at sample centres.
// ref: gpurelief.backend.numpy_ops.grid_positions
// ref: gpurelief.backend.numpy_ops.grid_uvs
// 2-D launch: x = column, y = row. Vertex k = row * gw + col.
#include "common.h"

extern "C" __global__ void grid_positions_f32(
    const float* __restrict__ heights, float* __restrict__ positions, int gh, int gw,
    float cx, float cy, float dx, float dy, float relief)
{
    // cx = float32((gw - 1) * 0.5), cy = float32((gh - 1) * 0.5): rounded once on the host, like numpy
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw || row >= gh) return;
    long long k = (long long)row * gw + col;
    float* p = positions + 3 * k;
    p[0] = ((float)col - cx) * dx;
    p[1] = (cy - (float)row) * dy;
    p[2] = heights[k] * relief;
}

extern "C" __global__ void grid_uvs_f32(float* __restrict__ uvs, int gh, int gw)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw || row >= gh) return;
    long long k = (long long)row * gw + col;
    uvs[2 * k] = ((float)col + 0.5f) / (float)gw;
    uvs[2 * k + 1] = ((float)row + 0.5f) / (float)gh;
}
