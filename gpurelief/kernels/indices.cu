// Triangle index buffer of the full grid: two counter-clockwise triangles per cell.
// ref: gpurelief.backend.numpy_ops.grid_indices
// 1-D launch over 16-byte pieces of the output (common.h): thread t writes indices PER*t .. PER*t + PER - 1
// (PER = 4 uint32 or 8 uint16), slot by slot: index 6 * cell + slot, cell = row * (gw - 1) + col.
#include "common.h"

// Slot s of cell (r, c) with corner a = r * gw + c; corners b = a + 1, c' = a + gw, d = a + gw + 1 and
// triangles (a, c', d), (a, d, b). Arithmetic in T, as numpy does after casting `a`: uint16 wraps the same way.
template <typename T>
__device__ __forceinline__ T cell_slot(unsigned int a, unsigned int gw, int slot) {
    T ta = (T)a, tw = (T)gw, one = (T)1;
    switch (slot) {
        case 1: return (T)(ta + tw);
        case 2: case 4: return (T)((T)(ta + tw) + one);
        case 5: return (T)(ta + one);
        default: return ta;  // slots 0 and 3
    }
}

template <typename T, int PER>
__device__ __forceinline__ void grid_indices_piece(T* __restrict__ out, int gh, int gw) {
    int cw = gw - 1;
    long long total = 6LL * (gh - 1) * cw;
    long long i0 = PER * global_index_1d();
    if (i0 >= total) return;
    int m = (total - i0 < PER) ? (int)(total - i0) : PER;
    long long cell = i0 / 6;
    int slot = (int)(i0 - 6 * cell);
    int row = (int)(cell / cw);
    int col = (int)(cell - (long long)row * cw);
    T v[PER];
    for (int j = 0; j < PER; ++j) {
        if (j < m) v[j] = cell_slot<T>((unsigned int)row * (unsigned int)gw + (unsigned int)col, (unsigned int)gw, slot);
        if (++slot == 6) {
            slot = 0;
            if (++col == cw) { col = 0; ++row; }
        }
    }
    store_piece(out + i0, v, m);
}

extern "C" __global__ void grid_indices_u32(unsigned int* __restrict__ indices, int gh, int gw)
{
    grid_indices_piece<unsigned int, 4>(indices, gh, gw);
}

extern "C" __global__ void grid_indices_u16(unsigned short* __restrict__ indices, int gh, int gw)
{
    grid_indices_piece<unsigned short, 8>(indices, gh, gw);
}
