// Triangle index buffer of the full grid: two counter-clockwise triangles per cell.
// ref: gpurelief.backend.numpy_ops.grid_indices
// 2-D launch over cells: x = cell column (< gw - 1), y = cell row (< gh - 1).
#include "common.h"

template <typename T>
__device__ __forceinline__ void emit_cell(T* __restrict__ out, long long cell, unsigned int a, unsigned int gw) {
    // Cell corners a=(r,c), b=(r,c+1), c=(r+1,c), d=(r+1,c+1): triangles (a, c, d) and (a, d, b).
    // Arithmetic in T, as numpy does after casting `a`: uint16 wraps the same way numpy's does.
    T ta = (T)a, tw = (T)gw, one = (T)1;
    T* o = out + 6 * cell;
    o[0] = ta;
    o[1] = (T)(ta + tw);
    o[2] = (T)((T)(ta + tw) + one);
    o[3] = ta;
    o[4] = (T)((T)(ta + tw) + one);
    o[5] = (T)(ta + one);
}

extern "C" __global__ void grid_indices_u32(unsigned int* __restrict__ indices, int gh, int gw)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw - 1 || row >= gh - 1) return;
    long long cell = (long long)row * (gw - 1) + col;
    emit_cell<unsigned int>(indices, cell, (unsigned int)row * (unsigned int)gw + (unsigned int)col, (unsigned int)gw);
}

extern "C" __global__ void grid_indices_u16(unsigned short* __restrict__ indices, int gh, int gw)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw - 1 || row >= gh - 1) return;
    long long cell = (long long)row * (gw - 1) + col;
    emit_cell<unsigned short>(indices, cell, (unsigned int)row * (unsigned int)gw + (unsigned int)col, (unsigned int)gw);
}
