// Exact-error RTIN on the GPU: error pyramid one level per launch (one thread per vertex), then a top-down
// refinement one depth per launch (classify -> scan on the host side -> emit). Float64 error arithmetic
// in the same operation order as the numba reference.
// ref: gpurelief/mesh/rtin_kernels.py (triangle_error, _vertex_error, _edge_level, _square_level, _splits, _walk)
// Coordinates: x = column, y = row on the padded (size+1)^2 square; heights row stride = size + 1.

#ifndef RTIN_HOST_SHIM
#define RTIN_INF __longlong_as_double(0x7ff0000000000000LL)
#endif

__device__ double rtin_triangle_error(const float* h, int stride, int ax, int ay, int bx, int by, int cx, int cy,
                                      int real_cols, int real_rows, double limit) {
    int minx = min(ax, min(bx, cx)), maxx = max(ax, max(bx, cx));
    int miny = min(ay, min(by, cy)), maxy = max(ay, max(by, cy));
    if (maxx > real_cols || maxy > real_rows) {
        if (minx >= real_cols || miny >= real_rows) return 0.0;
        return RTIN_INF;
    }
    double za = (double)h[(long long)ay * stride + ax];
    double zb = (double)h[(long long)by * stride + bx];
    double zc = (double)h[(long long)cy * stride + cx];
    int ux = bx - ax, uy = by - ay, wx = cx - ax, wy = cy - ay;
    double det = (double)(ux * wy - uy * wx);
    double gx = ((zb - za) * wy - (zc - za) * uy) / det;
    double gy = ((zc - za) * ux - (zb - za) * wx) / det;
    int shape, half, sx;
    if (ay == by) { shape = 0; half = 0; }
    else if (ax == bx) { shape = 1; half = abs(cx - ax); }
    else { shape = 2; half = abs(bx - ax); }
    sx = ((ax + bx) - 2 * cx > 0) ? 1 : -1;
    if (shape == 1) sx = (cx > ax) ? 1 : -1;
    double err = 0.0;
    for (int y = miny; y <= maxy; ++y) {
        int lo, hi;
        if (shape == 0) { int j = abs(y - cy); lo = cx - j; hi = cx + j; }
        else if (shape == 1) { int w = half - abs(y - cy); lo = sx > 0 ? ax : ax - w; hi = sx > 0 ? ax + w : ax; }
        else { int w = half - abs(y - cy); lo = sx > 0 ? cx : cx - w; hi = sx > 0 ? cx + w : cx; }
        double base = za + gx * (lo - ax) + gy * (y - ay);
        const float* row = h + (long long)y * stride;
        for (int x = lo; x <= hi; ++x) {
            double d = fabs((double)row[x] - (base + gx * (x - lo)));
            if (d > err) err = d;
        }
        if (err > limit) return err;
    }
    return err;
}

// errors[] of the diamond with hypotenuse (a, b) and apexes c1, c2 (an apex off the square: a one-triangle
// diamond); leaf_children: the triangles' children are the finest ones (error 0). With a finite limit a triangle
// inside the grid is first bounded from its children and grandchildren, d <= err <= max(children) + d
// (d = |h(m) - (h(a)+h(b))/2|, widened by tol), and measured only when that does not decide "err > limit".
__device__ double rtin_vertex_error(const float* h, const double* errors, int stride, int x, int y, int ax, int ay,
                                    int bx, int by, int c1x, int c1y, int c2x, int c2y, int size, int real_cols,
                                    int real_rows, double limit, double tol, bool leaf_children) {
    double d = fabs((double)h[(long long)y * stride + x] -
                    0.5 * ((double)h[(long long)ay * stride + ax] + (double)h[(long long)by * stride + bx]));
    double k1 = 0.0, k2 = 0.0;
    if (c1x >= 0 && c1y >= 0 && c1x <= size && c1y <= size && !leaf_children)
        k1 = fmax(errors[(long long)((ay + c1y) / 2) * stride + (ax + c1x) / 2], errors[(long long)((by + c1y) / 2) * stride + (bx + c1x) / 2]);
    if (c2x >= 0 && c2y >= 0 && c2x <= size && c2y <= size && !leaf_children)
        k2 = fmax(errors[(long long)((ay + c2y) / 2) * stride + (ax + c2x) / 2], errors[(long long)((by + c2y) / 2) * stride + (bx + c2x) / 2]);
    double err = fmax(k1, k2);
    if (err > limit) return err;
    if (limit < RTIN_INF && min(min(min(ax, ay), min(bx, by)), min(min(c1x, c1y), min(c2x, c2y))) >= 0 &&
        max(max(ax, bx), max(c1x, c2x)) <= real_cols && max(max(ay, by), max(c1y, c2y)) <= real_rows) {
        // the whole diamond inside the grid: both triangles decided at once when that is enough (same values)
        if (d > limit + tol) return fmax(err, d);
        if ((err + d) + tol <= limit) return (err + d) + tol;
    }
    for (int side = 0; side < 2; ++side) {
        int cx = side == 0 ? c1x : c2x, cy = side == 0 ? c1y : c2y;
        if (cx < 0 || cy < 0 || cx > size || cy > size) continue;
        if (max(ax, max(bx, cx)) > real_cols || max(ay, max(by, cy)) > real_rows) {
            if (min(ax, min(bx, cx)) >= real_cols || min(ay, min(by, cy)) >= real_rows) continue;  // padding
            return RTIN_INF;  // straddles the real border: must split
        }
        if (limit < RTIN_INF) {
            if (d > limit + tol) return fmax(err, d);
            double hi = (side == 0 ? k1 : k2) + d;
            if (hi + tol > limit && !leaf_children) {  // one level deeper: grandchildren's errors + max(d, the child's d)
                double za = (double)h[(long long)ay * stride + ax], zb = (double)h[(long long)by * stride + bx];
                double zc = (double)h[(long long)cy * stride + cx];
                double dc1 = fabs((double)h[(long long)((ay + cy) / 2) * stride + (ax + cx) / 2] - 0.5 * (za + zc));
                double dc2 = fabs((double)h[(long long)((by + cy) / 2) * stride + (bx + cx) / 2] - 0.5 * (zb + zc));
                double ga = 0.0, gb = 0.0, gc = 0.0;
                if ((ax + x) % 2 == 0 && (ay + y) % 2 == 0) {
                    ga = errors[(long long)((ay + y) / 2) * stride + (ax + x) / 2];
                    gb = errors[(long long)((by + y) / 2) * stride + (bx + x) / 2];
                    gc = errors[(long long)((cy + y) / 2) * stride + (cx + x) / 2];
                }
                hi = fmin(hi, fmax(fmax(ga, gc) + fmax(d, dc1), fmax(gc, gb) + fmax(d, dc2)));
            }
            if (hi + tol <= limit) { err = fmax(err, hi + tol); continue; }
        }
        err = fmax(err, rtin_triangle_error(h, stride, ax, ay, bx, by, cx, cy, real_cols, real_rows, limit));
        if (err > limit) return err;
    }
    return err;
}

// Edge vertices at scale s: n_even * n_odd horizontal (x = s(2i+1), y = 2sj) then as many vertical ones.
extern "C" __global__ void rtin_edge_level(const float* h, double* errors, int s, int size, int real_cols,
                                           int real_rows, double limit, double tol) {
    long long n_odd = size / (2 * s), n_even = n_odd + 1;
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= 2 * n_odd * n_even) return;
    int stride = size + 1;
    bool horizontal = t < n_odd * n_even;
    int x, y;
    if (horizontal) { y = (int)(2 * s * (t / n_odd)); x = (int)(s * (2 * (t % n_odd) + 1)); }
    else { t -= n_odd * n_even; y = (int)(s * (2 * (t / n_even) + 1)); x = (int)(2 * s * (t % n_even)); }
    int ax, ay, bx, by, c1x, c1y, c2x, c2y;
    if (horizontal) { ax = x - s; ay = y; bx = x + s; by = y; c1x = x; c1y = y - s; c2x = x; c2y = y + s; }
    else { ax = x; ay = y - s; bx = x; by = y + s; c1x = x - s; c1y = y; c2x = x + s; c2y = y; }
    long long at = (long long)y * stride + x;
    if (s == 1) {
        int hi_x = horizontal ? x + 1 : min(x + 1, size), hi_y = horizontal ? min(y + 1, size) : y + 1;
        if (hi_x <= real_cols && hi_y <= real_rows) {  // both triangles hold only their corners and the midpoint
            double za = (double)h[(long long)ay * stride + ax], zb = (double)h[(long long)by * stride + bx];
            errors[at] = fabs((double)h[at] - 0.5 * (za + zb));
            return;
        }
    }
    errors[at] = rtin_vertex_error(h, errors, stride, x, y, ax, ay, bx, by, c1x, c1y, c2x, c2y, size, real_cols,
                                   real_rows, limit, tol, s == 1);
}

// Square vertices at scale s: centres of 2s x 2s squares, n_side^2 of them.
extern "C" __global__ void rtin_square_level(const float* h, double* errors, int s, int size, int real_cols,
                                             int real_rows, double limit, double tol) {
    long long n_side = size / (2 * s);
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n_side * n_side) return;
    int stride = size + 1;
    int j = (int)(t / n_side), i = (int)(t % n_side);
    int y = s * (2 * j + 1), x = s * (2 * i + 1);
    int ax, ay, bx, by, c1x, c1y, c2x, c2y;
    if ((i + j) % 2 == 0) { ax = x - s; ay = y - s; bx = x + s; by = y + s; c1x = x + s; c1y = y - s; c2x = x - s; c2y = y + s; }
    else { ax = x + s; ay = y - s; bx = x - s; by = y + s; c1x = x - s; c1y = y - s; c2x = x + s; c2y = y + s; }
    long long at = (long long)y * stride + x;
    if (s == 1 && x + 1 <= real_cols && y + 1 <= real_rows) {
        // a 2x2 square inside the grid: off the legs (the children) each triangle holds only the centre
        double child = fmax(fmax(errors[at - stride], errors[at + stride]), fmax(errors[at - 1], errors[at + 1]));
        if (child <= limit) {
            double za = (double)h[(long long)ay * stride + ax], zb = (double)h[(long long)by * stride + bx];
            child = fmax(child, fabs((double)h[at] - 0.5 * (za + zb)));
        }
        errors[at] = child;
        return;
    }
    errors[at] = rtin_vertex_error(h, errors, stride, x, y, ax, ay, bx, by, c1x, c1y, c2x, c2y, size, real_cols,
                                   real_rows, limit, tol, false);
}

// Top-down refinement, one depth per launch. tris: n x 6 ints (ax, ay, bx, by, cx, cy).
// state: -1 = in the padding (dropped), 0 = leaf of the output mesh, 1 = split.
extern "C" __global__ void rtin_classify(const double* errors, int size, const int* tris, long long n, int real_cols,
                                         int real_rows, double threshold, int* state) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    const int* v = tris + 6 * t;
    int ax = v[0], ay = v[1], bx = v[2], by = v[3], cx = v[4], cy = v[5];
    int k;
    if (min(ax, min(bx, cx)) >= real_cols || min(ay, min(by, cy)) >= real_rows) k = -1;
    else if ((ax + bx) % 2 != 0 || (ay + by) % 2 != 0) k = 0;
    else {
        bool inside = max(ax, max(bx, cx)) <= real_cols && max(ay, max(by, cy)) <= real_rows;
        k = (errors[(long long)((ay + by) / 2) * (size + 1) + (ax + bx) / 2] > threshold || !inside) ? 1 : 0;
    }
    state[t] = k;
}

// Children of split triangles go to next[2 * split_rank], leaves to out[leaf_rank] as vertex ids
// row * grid_cols + col, counter-clockwise seen from +Z. Ranks are exclusive prefix sums over state.
extern "C" __global__ void rtin_emit(const int* tris, const int* state, const long long* split_rank,
                                     const long long* leaf_rank, long long n, int grid_cols, int* next,
                                     long long* out) {
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= n) return;
    const int* v = tris + 6 * t;
    int ax = v[0], ay = v[1], bx = v[2], by = v[3], cx = v[4], cy = v[5];
    if (state[t] == 1) {
        int mx = (ax + bx) / 2, my = (ay + by) / 2;
        int* c = next + 12 * split_rank[t];
        c[0] = cx; c[1] = cy; c[2] = ax; c[3] = ay; c[4] = mx; c[5] = my;
        c[6] = bx; c[7] = by; c[8] = cx; c[9] = cy; c[10] = mx; c[11] = my;
    } else if (state[t] == 0) {
        long long cross = (long long)(bx - ax) * (cy - ay) - (long long)(by - ay) * (cx - ax);
        long long ia = (long long)ay * grid_cols + ax, ib = (long long)by * grid_cols + bx, ic = (long long)cy * grid_cols + cx;
        long long* o = out + 3 * leaf_rank[t];
        o[0] = ia; o[1] = cross < 0 ? ib : ic; o[2] = cross < 0 ? ic : ib;
    }
}
