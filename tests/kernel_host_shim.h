// Host shim: compiles gpurelief/kernels/*.cu as plain C++ so the CPU tests can run the kernels'
// own code. __global__ functions become ordinary functions; a launch is a serial loop over the
// grid that sets blockIdx / threadIdx before each call (see tests/kernel_host.py, which
// generates one host_launch_<kernel> wrapper per kernel). No shared memory, no barriers: a kernel
// that needs them must get another CPU route (PoCL) rather than this shim.
#pragma once
#include <cmath>
#include <cstdint>

struct uint3 { unsigned int x, y, z; };
// the CUDA vector types the kernels store through (16-byte aligned, as on the GPU)
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

using std::isfinite;
using std::pow;

#define HOST_LAUNCH_LOOP(GX, GY, GZ, BX, BY, BZ, CALL)                                   \
    do {                                                                                   \
        gridDim = dim3(GX, GY, GZ);                                                        \
        blockDim = dim3(BX, BY, BZ);                                                       \
        for (unsigned int shim_bz = 0; shim_bz < (GZ); ++shim_bz)                                         \
            for (unsigned int shim_by = 0; shim_by < (GY); ++shim_by)                                     \
                for (unsigned int shim_bx = 0; shim_bx < (GX); ++shim_bx)                                 \
                    for (unsigned int shim_tz = 0; shim_tz < (BZ); ++shim_tz)                             \
                        for (unsigned int shim_ty = 0; shim_ty < (BY); ++shim_ty)                         \
                            for (unsigned int shim_tx = 0; shim_tx < (BX); ++shim_tx) {                   \
                                blockIdx = uint3{shim_bx, shim_by, shim_bz};                              \
                                threadIdx = uint3{shim_tx, shim_ty, shim_tz};                             \
                                CALL;                                                      \
                            }                                                              \
    } while (0)
