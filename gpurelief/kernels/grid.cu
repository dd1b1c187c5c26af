// Displacement of the grid to vertex positions, and texture coordinates at sample centres.
// ref: gpurelief.backend.numpy_ops.grid_positions
// ref: gpurelief.backend.numpy_ops.grid_uvs
// 1-D launch over 16-byte pieces of the output (common.h): thread t writes floats 4t..4t+3 of the flat
// (n, 3) positions or (n, 2) UVs, component by component (vertex k = row * gw + col).
#include "common.h"

extern "C" __global__ void grid_positions_f32(
    const float* __restrict__ heights, float* __restrict__ positions, int gh, int gw,
    float cx, float cy, float dx, float dy, float relief)
{
    // cx = float32((gw - 1) * 0.5), cy = float32((gh - 1) * 0.5): rounded once on the host, like numpy
    long long total = 3LL * gh * gw;
    long long f0 = 4 * global_index_1d();
    if (f0 >= total) return;
    int m = (total - f0 < 4) ? (int)(total - f0) : 4;
    long long k = f0 / 3;
    int c = (int)(f0 - 3 * k);
    int row = (int)(k / gw);
    int col = (int)(k - (long long)row * gw);
    float v[4];
    for (int j = 0; j < 4; ++j) {
        if (j < m) {
            v[j] = (c == 0) ? ((float)col - cx) * dx : (c == 1) ? (cy - (float)row) * dy : heights[k] * relief;
        }
        if (++c == 3) {
            c = 0;
            ++k;
            if (++col == gw) { col = 0; ++row; }
        }
    }
    store_piece(positions + f0, v, m);
}

extern "C" __global__ void grid_uvs_f32(float* __restrict__ uvs, int gh, int gw)
{
    // a piece is two whole vertices (u, v, u, v); the last piece of an odd vertex count holds one
    long long n = (long long)gh * gw;
    long long k0 = 2 * global_index_1d();
    if (k0 >= n) return;
    int verts = (n - k0 < 2) ? 1 : 2;
    int row = (int)(k0 / gw);
    int col = (int)(k0 - (long long)row * gw);
    float v[4];
    for (int j = 0; j < verts; ++j) {
        v[2 * j] = ((float)col + 0.5f) / (float)gw;
        v[2 * j + 1] = ((float)row + 0.5f) / (float)gh;
        if (++col == gw) { col = 0; ++row; }
    }
    store_piece(uvs + 2 * k0, v, 2 * verts);
}
