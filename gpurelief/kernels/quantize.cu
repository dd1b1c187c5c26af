// KHR_mesh_quantization: normalized SHORT positions, BYTE normals, UNSIGNED_SHORT UVs.
// ref: gpurelief.backend.numpy_ops.quantize_positions
// ref: gpurelief.backend.numpy_ops.quantize_normals
// ref: gpurelief.backend.numpy_ops.quantize_uvs
// The transform (centre, half extent) comes from numpy_ops.quantization_transform on the host;
// its float32 roundings are done there too, so both backends quantize with identical constants.
#include "common.h"

// out: (n, 4) int16, the 4th lane is the zero pad that keeps the vertex stride at 8 bytes.
extern "C" __global__ void quantize_positions_i16(
    const float* __restrict__ positions, short* __restrict__ out, long long n,
    float c0, float c1, float c2, float s0, float s1, float s2)
{
    // s* = float32(32767) / float32(half_extent): the numpy twin's `inv`
    long long i = global_index_1d();
    if (i >= n) return;
    const float* p = positions + 3 * i;
    short* o = out + 4 * i;
    o[0] = (short)np_clip(rintf((p[0] - c0) * s0), -32767.0f, 32767.0f);
    o[1] = (short)np_clip(rintf((p[1] - c1) * s1), -32767.0f, 32767.0f);
    o[2] = (short)np_clip(rintf((p[2] - c2) * s2), -32767.0f, 32767.0f);
    o[3] = 0;
}

// out: (n, 4) int8 holding normalize(S * n) * 127, zero pad; S = float32(half_extent).
extern "C" __global__ void quantize_normals_i8(
    const float* __restrict__ normals, signed char* __restrict__ out, long long n,
    float s0, float s1, float s2)
{
    long long i = global_index_1d();
    if (i >= n) return;
    const float* v = normals + 3 * i;
    float m0 = v[0] * s0, m1 = v[1] * s1, m2 = v[2] * s2;
    float len = sqrtf(m0 * m0 + m1 * m1 + m2 * m2);
    signed char* o = out + 4 * i;
    o[0] = (signed char)np_clip(rintf((m0 / len) * 127.0f), -127.0f, 127.0f);
    o[1] = (signed char)np_clip(rintf((m1 / len) * 127.0f), -127.0f, 127.0f);
    o[2] = (signed char)np_clip(rintf((m2 / len) * 127.0f), -127.0f, 127.0f);
    o[3] = 0;
}

// count = number of floats (2 per vertex); out: uint16 u * 65535.
extern "C" __global__ void quantize_uvs_u16(
    const float* __restrict__ uvs, unsigned short* __restrict__ out, long long count)
{
    long long i = global_index_1d();
    if (i >= count) return;
    out[i] = (unsigned short)np_clip(rintf(uvs[i] * 65535.0f), 0.0f, 65535.0f);
}
