/* The arithmetic of tinyrnn's whole-window kernels, one source for every target: a window of any cell (the tanh
 * RNN, the GRU, the LSTM) forward and backward, clipping and Adam over the flat parameters, and a sum of squares.
 * Included after vector.h once per instruction set: three times by native/tinyrnn_native/kernels.c (AVX-512,
 * AVX2 + FMA, baseline; GCC) and once by kernels/simd.c (WebAssembly SIMD128; clang). NAME(x) appends the
 * variant's suffix, MR is the rows of a product's tile. Everything is float32, row-major and contiguous; the
 * kernels trust their arguments (the Python side checks them).
 *
 * The order of operations is the fused engine's (ops.py, gru.py, lstm.py: the numpy reference every build is
 * tested against, to float32 rounding). */

/* This variant's vector: VW floats (its includer sets VW; 4 = one SSE or v128 register, 8 = one AVX2 register,
 * 16 = one AVX-512 register), with its loads and stores, under this variant's names. */
typedef float NAME(vf) __attribute__((vector_size(4 * VW)));
typedef int NAME(vi) __attribute__((vector_size(4 * VW)));
#define vf NAME(vf)
#define vi NAME(vi)
#define load NAME(load)
#define store NAME(store)
#define vselect NAME(vselect)
#define load_n NAME(load_n)
#define store_n NAME(store_n)
INLINE vf load(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
INLINE void store(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
INLINE vf vselect(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
/* A whole vector at p when full, else the float at p in every lane (a row's last H mod VW floats go through the
 * same vector code one at a time, so both paths round alike). */
INLINE vf load_n(const float *p, int full) { return full ? load(p) : (vf){0} + *p; }
INLINE void store_n(float *p, vf v, int full) {
    if (full) store(p, v);
    else *p = v[0];
}

/* acc + a b for a float a and a vector b, and p x + c for vectors p, x and a float c (a polynomial's step): a
 * multiply and an add, which GCC's native variants contract into one FMA (-ffp-contract=fast); a variant may fuse
 * them itself (simd.c's relaxed build: f32x4.relaxed_madd). */
#ifndef MADD
#define MADD(acc, a, b) ((acc) + (a) * (b))
#endif
#ifndef POLY
#define POLY(p, x, c) ((p) * (x) + (c))
#endif

/* b < a ? b : a and a < b ? b : a, lane by lane (a NaN in a passes through): x86's minps and maxps; a variant may
 * name its own instruction for them (simd.c: f32x4.pmin and f32x4.pmax, where clang would otherwise emit the
 * NaN-propagating f32x4.min, several instructions in a browser's code). */
#ifndef VMIN
#define VMIN(a, b) vselect((b) < (a), (b), (a))
#define VMAX(a, b) vselect((a) < (b), (b), (a))
#endif

/* C (M, N) = [C +] A B over k < K with A(i, k) = A[i*sai + k*sak] (A may be read transposed in place) and
 * B(k, j) = B[k*ldb + j]. Tiles of MR rows x VW columns (MR independent accumulators hide the FMA latency);
 * single rows take 8 VW (then 4 VW, then VW) columns at a time; the last N % VW columns are scalar. A long K
 * goes in chunks of KC (the rows of A and B a chunk reads stay in L1, and their pages in the TLB, however far
 * apart they lie), each chunk adding into C: the same float32 operations in the same order as one pass. */
#define KC 64
KERNEL void NAME(gemm)(long M, long N, long K, const float *A, long sai, long sak, const float *B, long ldb,
                       float *C, long ldc, int accumulate) {
    if (K > 2 * KC) {
        for (long k0 = 0; k0 < K; k0 += KC)
            NAME(gemm)(M, N, K - k0 < KC ? K - k0 : KC, A + k0 * sak, sai, sak, B + k0 * ldb, ldb, C, ldc,
                       accumulate || k0 > 0);
        return;
    }
    long i = 0;
    for (; i + MR <= M; i += MR) {
        for (long j = 0; j + VW <= N; j += VW) {
            vf acc[MR];
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) acc[r] = accumulate ? load(C + (i + r) * ldc + j) : (vf){0};
            for (long k = 0; k < K; k++) {
                vf b = load(B + k * ldb + j);
                const float *a = A + i * sai + k * sak;
#pragma GCC unroll 8
                for (int r = 0; r < MR; r++) acc[r] = MADD(acc[r], a[r * sai], b);
            }
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) store(C + (i + r) * ldc + j, acc[r]);
        }
    }
    for (; i < M; i++) {  /* the remaining rows, one at a time (B = 1 is all of them) */
        const float *a = A + i * sai;
        float *c = C + i * ldc;
        long j = 0;
        for (; j + 8 * VW <= N; j += 8 * VW) {  /* eight independent accumulators: FMA throughput, not latency */
            vf acc[8];
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) acc[q] = accumulate ? load(c + j + VW * q) : (vf){0};
            for (long k = 0; k < K; k++) {
                float ak = a[k * sak];
                const float *b = B + k * ldb + j;
#pragma GCC unroll 8
                for (int q = 0; q < 8; q++) acc[q] = MADD(acc[q], ak, load(b + VW * q));
            }
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) store(c + j + VW * q, acc[q]);
        }
        for (; j + 4 * VW <= N; j += 4 * VW) {
            vf c0 = accumulate ? load(c + j) : (vf){0}, c1 = accumulate ? load(c + j + VW) : (vf){0};
            vf c2 = accumulate ? load(c + j + 2 * VW) : (vf){0}, c3 = accumulate ? load(c + j + 3 * VW) : (vf){0};
            for (long k = 0; k < K; k++) {
                float ak = a[k * sak];
                const float *b = B + k * ldb + j;
                c0 = MADD(c0, ak, load(b)), c1 = MADD(c1, ak, load(b + VW));
                c2 = MADD(c2, ak, load(b + 2 * VW)), c3 = MADD(c3, ak, load(b + 3 * VW));
            }
            store(c + j, c0), store(c + j + VW, c1), store(c + j + 2 * VW, c2), store(c + j + 3 * VW, c3);
        }
        for (; j + VW <= N; j += VW) {
            vf c0 = accumulate ? load(c + j) : (vf){0};
            for (long k = 0; k < K; k++) c0 = MADD(c0, a[k * sak], load(B + k * ldb + j));
            store(c + j, c0);
        }
    }
    for (long j = N / VW * VW; j < N; j++)  /* the last columns of every row */
        for (long r = 0; r < M; r++) {
            float s = accumulate ? C[r * ldc + j] : 0.0f;
            for (long k = 0; k < K; k++) s += A[r * sai + k * sak] * B[k * ldb + j];
            C[r * ldc + j] = s;
        }
}

/* tanh, Eigen's (and so XLA's) rational approximation: x P(x^2) / Q(x^2) on [-7.905, 7.905], x itself below
 * 4e-4 in magnitude; a few ulp from the correctly rounded value. */
INLINE vf NAME(tanh_v)(vf x) {
    const float clamp = 7.90531110763549805f;
    vf xc = VMAX(VMIN(x, (vf){0} + clamp), (vf){0} - clamp);
    vf x2 = xc * xc;
    vf p = POLY(x2, (vf){0} - 2.76076847742355e-16f, 2.00018790482477e-13f);
    p = POLY(p, x2, -8.60467152213735e-11f);
    p = POLY(p, x2, 5.12229709037114e-08f);
    p = POLY(p, x2, 1.48572235717979e-05f);
    p = POLY(p, x2, 6.37261928875436e-04f);
    p = POLY(p, x2, 4.89352455891786e-03f);
    p = p * xc;
    vf q = POLY(x2, (vf){0} + 1.19825839466702e-06f, 1.18534705686654e-04f);
    q = POLY(q, x2, 2.26843463243900e-03f);
    q = POLY(q, x2, 4.89352518554385e-03f);
    vf ax = (vf)((vi)x & 0x7fffffff);  /* |x| */
    return vselect(ax < 0.0004f, x, p / q);
}

/* σ(x) = (1 + tanh(x/2)) / 2, as ops.sigmoid_ computes it (never overflows). */
INLINE vf NAME(sigmoid_v)(vf x) { return (NAME(tanh_v)(x * 0.5f) + 1.0f) * 0.5f; }

KERNEL void NAME(tanh_in_place)(float *x, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) store(x + i, NAME(tanh_v)(load(x + i)));
    for (; i < n; i++) x[i] = NAME(tanh_v)((vf){0} + x[i])[0];
}

/* exp(z) for z <= 0 (Cephes' expf): z = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-6 polynomial, times 2^n;
 * 0 below -87.3 (where the float result is 0 or subnormal anyway). */
INLINE vf NAME(exp_nonpositive_v)(vf z) {
    vi tiny = z < -87.3f;
    z = vselect(tiny, (vf){0}, z);
    vf n = z * 1.44269504088896341f;
    n = __builtin_convertvector(__builtin_convertvector(n + vselect(n < 0, (vf){0} - 0.5f, (vf){0} + 0.5f), vi), vf);
    vf r = z - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf r2 = r * r;
    vf p = r * 1.9875691500E-4f + 1.3981999507E-3f;
    p = p * r + 8.3334519073E-3f;
    p = p * r + 4.1665795894E-2f;
    p = p * r + 1.6666665459E-1f;
    p = p * r + 5.0000001201E-1f;
    p = p * r2 + r + 1.0f;
    vi scale = (__builtin_convertvector(n, vi) + 127) << 23;
    vf out = p * (vf)scale;
    return vselect(tiny, (vf){0}, out);
}

/* Softmax cross-entropy of logits (N, V) against ids targets (N,): dL/dlogits = p - onehot over the logits, rows
 * padded(V) floats apart (the padding is overwritten: it ends as 0). Returns the summed -log p[target]. */
KERNEL double NAME(softmax_xent)(long N, long V, float *logits, const int *targets) {
    const long Vp = padded(V);
    double total = 0.0;
    for (long r = 0; r < N; r++) {
        float *x = logits + r * Vp;
        for (long j = V; j < Vp; j++) x[j] = -__builtin_inff();  /* exp gives 0 there */
        vf mx_v = load(x);
        for (long j = VW; j < Vp; j += VW) {
            vf y = load(x + j);
            mx_v = vselect(y > mx_v, y, mx_v);
        }
        float mx = mx_v[0];
#pragma GCC unroll 16
        for (int k = 1; k < VW; k++) mx = mx_v[k] > mx ? mx_v[k] : mx;
        float target_shifted = x[targets[r]] - mx;
        vf acc = {0};
        for (long j = 0; j < Vp; j += VW) {
            vf e = NAME(exp_nonpositive_v)(load(x + j) - mx);
            store(x + j, e);
            acc += e;
        }
        float sum = 0.0f;
#pragma GCC unroll 16
        for (int k = 0; k < VW; k++) sum += acc[k];
        total += log_d((double)sum) - (double)target_shifted;
        const float inv = 1.0f / sum;
        for (long j = 0; j < Vp; j += VW) store(x + j, load(x + j) * inv);
        x[targets[r]] -= 1.0f;
    }
    return total;
}

/* x (R, C) -> out (C, ldo) with out[c*ldo + r] = x[r*C + c], in 16 x 16 tiles (both sides stay in L1). */
KERNEL void NAME(transpose)(long R, long C, const float *x, float *out, long ldo) {
    for (long r0 = 0; r0 < R; r0 += 16)
        for (long c0 = 0; c0 < C; c0 += 16) {
            long r1 = r0 + 16 < R ? r0 + 16 : R, c1 = c0 + 16 < C ? c0 + 16 : C;
            for (long r = r0; r < r1; r++)
                for (long c = c0; c < c1; c++) out[c * ldo + r] = x[r * C + c];
        }
}

/* out (N, C) rows: out[n] = W_t[ids[n]] + bias, W_t (V, C) (the transposed W_ih: the embedding lookup). */
KERNEL void NAME(embed)(long N, long C, const float *W_t, const float *bias, const int *ids, float *out) {
    for (long n = 0; n < N; n++) {
        const float *w = W_t + (long)ids[n] * C;
        float *o = out + n * C;
        for (long j = 0; j < C; j++) o[j] = w[j] + bias[j];
    }
}

/* sums (C) = the column sums of x (N, C) (written, not added). */
KERNEL void NAME(column_sums)(long N, long C, const float *x, float *sums) {
    for (long j = 0; j < C; j++) sums[j] = 0.0f;
    for (long n = 0; n < N; n++)
        for (long j = 0; j < C; j++) sums[j] += x[n * C + j];
}

/* dW (C, V) = the transposed embedding's gradient: column v sums the rows of d (N, C) where ids == v. scratch:
 * V C floats. */
KERNEL void NAME(scatter_ids)(long N, long C, long V, const int *ids, const float *d, float *dW, float *scratch) {
    for (long i = 0; i < V * C; i++) scratch[i] = 0.0f;
    for (long n = 0; n < N; n++) {
        const float *row = d + n * C;
        float *to = scratch + (long)ids[n] * C;
        for (long j = 0; j < C; j++) to[j] += row[j];
    }
    NAME(transpose)(V, C, scratch, dW, V);
}

/* The output layer and the loss: logits = h W_yh^T + b_y for h_1..h_T (N, H), then the softmax cross-entropy. */
KERNEL double NAME(output_forward)(long N, long H, long V, const float *W_yh, const float *b_y, const float *h,
                                   const int *targets, float *logits, float *W_yh_t) {
    const long Vp = padded(V);
    NAME(transpose)(V, H, W_yh, W_yh_t, Vp);  /* (H, Vp), zero in the padding */
    for (long k = 0; k < H; k++)
        for (long j = V; j < Vp; j++) W_yh_t[k * Vp + j] = 0.0f;
    for (long n = 0; n < N; n++) {
        for (long j = 0; j < V; j++) logits[n * Vp + j] = b_y[j];
        for (long j = V; j < Vp; j++) logits[n * Vp + j] = 0.0f;
    }
    NAME(gemm)(N, Vp, H, h, H, 1, W_yh_t, Vp, logits, Vp, 1);
    return NAME(softmax_xent)(N, V, logits, targets);
}

/* Back through the output layer with dlogits scaled by g: dhs (N, H), dW_yh (V, H), db_y (V). */
KERNEL void NAME(output_backward)(long N, long H, long V, const float *W_yh, const float *h, const float *dlogits,
                                  float g, float *dhs, float *dW_yh, float *db_y) {
    const long Vp = padded(V);
    NAME(gemm)(N, H, V, dlogits, Vp, 1, W_yh, H, dhs, H, 0);
    NAME(gemm)(V, H, N, dlogits, 1, Vp, h, H, dW_yh, H, 0);
    for (long j = 0; j < V; j++) db_y[j] = 0.0f;
    for (long n = 0; n < N; n++)
        for (long j = 0; j < V; j++) db_y[j] += dlogits[n * Vp + j];
    if (g != 1.0f) {
        for (long i = 0; i < N * H; i++) dhs[i] *= g;
        for (long i = 0; i < V * H; i++) dW_yh[i] *= g;
        for (long j = 0; j < V; j++) db_y[j] *= g;
    }
}

#include "window_cells.h"

/* One window's forward pass: state0 (B, S) -> state_last (B, S); the summed cross-entropy (nats) of targets
 * after ids (both (T, B), time-major). work: window_size floats, kept for window_backward. */
KERNEL double NAME(window_forward)(int cell, long T, long B, long H, long V, const float *P, const int *ids,
                                   const int *targets, const float *state0, float *state_last, float *work) {
    const arena_t a = arena_of(cell, T, B, H, V);
    const long G = gates_of(cell), N = T * B, S = cell == CELL_LSTM ? 2 * H : H;
    const float *W_yh = P + (V + H + (cell == CELL_RNN ? 1 : 2)) * G * H, *b_y = W_yh + V * H;
    float *hs = work + a.hs, *cs = work + a.cs;
    for (long b = 0; b < B; b++)
        for (long j = 0; j < H; j++) {
            hs[b * H + j] = state0[b * S + j];
            if (cell == CELL_LSTM) cs[b * H + j] = state0[b * S + H + j];
        }
    if (cell == CELL_RNN) NAME(rnn_forward)(T, B, H, V, P, ids, work, a);
    else if (cell == CELL_GRU) NAME(gru_forward)(T, B, H, V, P, ids, work, a);
    else NAME(lstm_forward)(T, B, H, V, P, ids, work, a);
    for (long b = 0; b < B; b++)
        for (long j = 0; j < H; j++) {
            state_last[b * S + j] = hs[(T * B + b) * H + j];
            if (cell == CELL_LSTM) state_last[b * S + H + j] = cs[(T * B + b) * H + j];
        }
    return NAME(output_forward)(N, H, V, W_yh, b_y, hs + B * H, targets, work + a.dlogits, work + a.wt);
}

/* The backward pass of the window window_forward computed in work: G (P's layout), the gradient of g times the
 * summed nats, and dstate0 (B, S), that of the state it started from. */
KERNEL void NAME(window_backward)(int cell, long T, long B, long H, long V, const float *P, const int *ids, float g,
                                  float *Gr, float *dstate0, float *work) {
    const arena_t a = arena_of(cell, T, B, H, V);
    const long G = gates_of(cell), N = T * B, S = cell == CELL_LSTM ? 2 * H : H;
    const long out = (V + H + (cell == CELL_RNN ? 1 : 2)) * G * H;
    NAME(output_backward)(N, H, V, P + out, work + a.hs + B * H, work + a.dlogits, g, work + a.dhs, Gr + out,
                          Gr + out + V * H);
    if (cell == CELL_RNN) NAME(rnn_backward)(T, B, H, V, P, ids, Gr, work, a);
    else if (cell == CELL_GRU) NAME(gru_backward)(T, B, H, V, P, ids, Gr, work, a);
    else NAME(lstm_backward)(T, B, H, V, P, ids, Gr, work, a);
    const float *dh = work + a.dh, *dc = work + a.dc;
    for (long b = 0; b < B; b++)
        for (long j = 0; j < H; j++) {
            dstate0[b * S + j] = dh[b * H + j];
            if (cell == CELL_LSTM) dstate0[b * S + H + j] = dc[b * H + j];
        }
}

/* Clipping and Adam over the flat arrays in one pass: g = clip(G, -clip, clip) * gscale (clip = infinity: no
 * clipping by value; NaN stays NaN), then numpy's Adam in float32 (optim.Adam, same operations in the same
 * order; no fused multiply-adds), into P_out, M_out, V_out. Returns how many new parameters are not finite.
 * (g * 1.0f is g exactly, so gscale = 1 is "no clipping by norm".) */
NO_CONTRACT
KERNEL long NAME(adam)(long n, const float *restrict P, const float *restrict G, const float *restrict M,
                       const float *restrict Vs, float clip, float gscale, float b1, float c1, float b2, float c2,
                       float step, float eps, float *restrict P_out, float *restrict M_out, float *restrict V_out) {
    for (long i = 0; i < n; i++) {
        float g = G[i];
        g = g > clip ? clip : g < -clip ? -clip : g;
        g = g * gscale;
        float m = b1 * M[i] + c1 * g;
        float v = b2 * Vs[i] + c2 * (g * g);
        M_out[i] = m, V_out[i] = v;
        P_out[i] = P[i] - step * m / (__builtin_sqrtf(v) + eps);
    }
    long bad = 0;
    for (long i = 0; i < n; i++) bad += !(P_out[i] - P_out[i] == 0.0f);
    return bad;
}

/* The sum of squares of clip(x, -clip, clip) (n,): VW float32 partial sums, added in double. */
KERNEL double NAME(sum_squares)(long n, const float *x, float clip) {
    double s = 0.0;
    vf acc = {0};
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf v = load(x + i);
        v = vselect(v > clip, (vf){0} + clip, v);
        v = vselect(v < -clip, (vf){0} - clip, v);
        acc += v * v;
    }
#pragma GCC unroll 16
    for (int k = 0; k < VW; k++) s += acc[k];
    for (; i < n; i++) {
        float v = x[i] > clip ? clip : x[i] < -clip ? -clip : x[i];
        s += (double)v * v;
    }
    return s;
}

#undef KC
#undef vf
#undef vi
#undef load
#undef store
#undef vselect
#undef load_n
#undef store_n
