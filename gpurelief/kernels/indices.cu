// Triangle index buffer of the full grid: two counter-clockwise triangles per cell.
// ref: gpurelief.backend.numpy_ops.grid_indices
// 1-D launch over groups of cells (cell c = row * (gw - 1) + col): 2 cells per thread for uint32, 4 for
// uint16, so that each thread writes 48 bytes as three 16-byte stores (common.h store_words); the last
// group of a grid whose cell count is not a multiple is written per index.
#include "common.h"

#define CELLS_PER_THREAD_U32 2
#define CELLS_PER_THREAD_U16 4

template <typename T>
__device__ __forceinline__ void cell_indices(T* o, unsigned int a, unsigned int gw) {
    // Cell corners a=(r,c), b=(r,c+1), c=(r+1,c), d=(r+1,c+1): triangles (a, c, d) and (a, d, b).
    // Arithmetic in T, as numpy does after casting `a`: uint16 wraps the same way numpy's does.
    T ta = (T)a, tw = (T)gw, one = (T)1;
    o[0] = ta;
    o[1] = (T)(ta + tw);
    o[2] = (T)((T)(ta + tw) + one);
    o[3] = ta;
    o[4] = (T)((T)(ta + tw) + one);
    o[5] = (T)(ta + one);
}

// 48 bytes of indices -> 12 words (little-endian, as the GPU and x86 store them)
__device__ __forceinline__ void pack_words(const unsigned int* v, unsigned int* w) {
    for (int i = 0; i < 12; ++i) w[i] = v[i];
}
__device__ __forceinline__ void pack_words(const unsigned short* v, unsigned int* w) {
    for (int i = 0; i < 12; ++i) w[i] = (unsigned int)v[2 * i] | ((unsigned int)v[2 * i + 1] << 16);
}

template <typename T, int CELLS>
__device__ __forceinline__ void grid_indices_group(T* __restrict__ out, int gh, int gw) {
    long long cells = (long long)(gh - 1) * (gw - 1);
    long long c0 = CELLS * global_index_1d();
    if (c0 >= cells) return;
    int m = (cells - c0 < CELLS) ? (int)(cells - c0) : CELLS;
    int cw = gw - 1;
    int row = (int)(c0 / cw);
    int col = (int)(c0 - (long long)row * cw);
    T v[6 * CELLS];
    for (int j = 0; j < CELLS; ++j) {
        if (j < m) cell_indices<T>(v + 6 * j, (unsigned int)row * (unsigned int)gw + (unsigned int)col, (unsigned int)gw);
        if (++col == cw) { col = 0; ++row; }
    }
    T* o = out + 6 * c0;
    if (m == CELLS) {
        unsigned int w[12];
        pack_words(v, w);
        store_words(reinterpret_cast<unsigned int*>(o), w, 12, 12);
    } else {
        for (int j = 0; j < 6 * m; ++j) o[j] = v[j];
    }
}

extern "C" __global__ void grid_indices_u32(unsigned int* __restrict__ indices, int gh, int gw)
{
    grid_indices_group<unsigned int, CELLS_PER_THREAD_U32>(indices, gh, gw);
}

extern "C" __global__ void grid_indices_u16(unsigned short* __restrict__ indices, int gh, int gw)
{
    grid_indices_group<unsigned short, CELLS_PER_THREAD_U16>(indices, gh, gw);
}
