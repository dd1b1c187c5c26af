// Compaction of the grid where alpha cuts cells: count -> scan -> emit.
// ref: gpurelief.backend.numpy_ops.cut_cells
// ref: gpurelief.backend.numpy_ops.compact_grid
// 1. cut_cells_u8 (cells) and used_vertices_u8 (vertices) count; 2. the caller takes inclusive
// prefix sums of both masks (cupy.cumsum on the GPU, numpy.cumsum in the CPU tests: integer scans
// are exact in any order); 3. compact_vertex_ids and compact_indices_* emit into the sized outputs.
// Masks are uint8 0/1 (numpy / CuPy bool arrays have the same layout).
#include "common.h"

extern "C" __global__ void cut_cells_u8(
    const unsigned char* __restrict__ valid, unsigned char* __restrict__ keep, int gh, int gw)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw - 1 || row >= gh - 1) return;
    const unsigned char* top = valid + (long long)row * gw + col;
    const unsigned char* bottom = top + gw;
    keep[(long long)row * (gw - 1) + col] = (top[0] | top[1] | bottom[0] | bottom[1]) ? 1 : 0;
}

// A vertex is used when any of the (up to four) cells around it is kept. Gathering (not
// scattering from cells) keeps the writes race-free without atomics.
extern "C" __global__ void used_vertices_u8(
    const unsigned char* __restrict__ keep, unsigned char* __restrict__ used, int gh, int gw)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw || row >= gh) return;
    int cw = gw - 1, ch = gh - 1;
    unsigned char u = 0;
    for (int r = row - 1; r <= row; ++r) {
        if (r < 0 || r >= ch) continue;
        for (int c = col - 1; c <= col; ++c) {
            if (c < 0 || c >= cw) continue;
            u |= keep[(long long)r * cw + c];
        }
    }
    used[(long long)row * gw + col] = u ? 1 : 0;
}

// vertex_scan: inclusive prefix sum of `used`; vertex_ids has vertex_scan[n - 1] entries.
extern "C" __global__ void compact_vertex_ids(
    const unsigned char* __restrict__ used, const unsigned int* __restrict__ vertex_scan,
    unsigned int* __restrict__ vertex_ids, long long n)
{
    long long i = global_index_1d();
    if (i >= n || !used[i]) return;
    vertex_ids[vertex_scan[i] - 1] = (unsigned int)i;
}

template <typename T>
__device__ __forceinline__ void emit_kept_cell(
    const unsigned char* __restrict__ keep, const unsigned int* __restrict__ cell_scan,
    const unsigned int* __restrict__ vertex_scan, T* __restrict__ indices, int gh, int gw)
{
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    int row = blockIdx.y * blockDim.y + threadIdx.y;
    if (col >= gw - 1 || row >= gh - 1) return;
    long long cell = (long long)row * (gw - 1) + col;
    if (!keep[cell]) return;
    long long a = (long long)row * gw + col;
    // vertices renumbered in grid order: new id = inclusive scan - 1
    T va = (T)(vertex_scan[a] - 1u);
    T vb = (T)(vertex_scan[a + 1] - 1u);
    T vc = (T)(vertex_scan[a + gw] - 1u);
    T vd = (T)(vertex_scan[a + gw + 1] - 1u);
    T* o = indices + 6 * (long long)(cell_scan[cell] - 1u);
    o[0] = va; o[1] = vc; o[2] = vd;
    o[3] = va; o[4] = vd; o[5] = vb;
}

extern "C" __global__ void compact_indices_u32(
    const unsigned char* __restrict__ keep, const unsigned int* __restrict__ cell_scan,
    const unsigned int* __restrict__ vertex_scan, unsigned int* __restrict__ indices, int gh, int gw)
{
    emit_kept_cell<unsigned int>(keep, cell_scan, vertex_scan, indices, gh, gw);
}

extern "C" __global__ void compact_indices_u16(
    const unsigned char* __restrict__ keep, const unsigned int* __restrict__ cell_scan,
    const unsigned int* __restrict__ vertex_scan, unsigned short* __restrict__ indices, int gh, int gw)
{
    emit_kept_cell<unsigned short>(keep, cell_scan, vertex_scan, indices, gh, gw);
}
