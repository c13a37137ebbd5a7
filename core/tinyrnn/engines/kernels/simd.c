/* float32 kernels for the browser, in WebAssembly SIMD (128 bits: four floats per vector).
 *
 * Pyodide's numpy has no BLAS: its matrix products are scalar loops, and each numpy call inside a time loop
 * costs interpreter time. These kernels take over the hot part of training there (see
 * core/tinyrnn/engines/wasm_module.py; the numpy code in bptt.py stays the reference they are tested against):
 *
 *   sgemm         C = A B                        one matrix product (the output layer, dW_hh)
 *   rnn_forward   h_t = tanh(a_t + h_{t-1} W)    the whole forward time loop, in place
 *   rnn_backward  dL/da_t and dL/dh_0            the whole backward time loop, in place
 *   gru_forward   the GRU's forward time loop    gates r, z, n and h_t (PyTorch's equations, gru.py)
 *   gru_backward  the GRU's backward time loop   gate gradients and dL/dh_0
 *   lstm_forward  the LSTM's forward time loop   gates i, f, g, o, c_t and h_t (lstm.py)
 *   lstm_backward the LSTM's backward time loop  gate gradients, dL/dh_0 and dL/dc_0
 *   softmax_xent  loss terms and dL/dlogits      softmax cross-entropy over every row
 *   window_size, window_forward, window_backward
 *                 a whole window of any cell     forward (embedding, time loop, output layer, softmax) and the
 *                                                whole BPTT in one call each: the browser's flat path (engines/wasm.py)
 *   adam          clipping + one Adam update     the optimiser's array operations in one pass
 *   sum_squares   the global norm's sum          (with clipping by value)
 *   add_into      x += y                         the helpers' gradients into this worker's (the sharded engine)
 *
 * window_size .. sum_squares are the shared arithmetic of window_impl.h, which the native package (native/)
 * compiles too. The time-loop kernels above them serve the numpy engines (ops.py, gru.py, lstm.py) inside
 * Pyodide: their tanh and exp are computed in double precision and rounded once (0.5 ulp, like numpy's), where
 * the whole windows use the few-ulp float32 approximations both builds share.
 *
 * The module imports its caller's linear memory (Pyodide's heap, where numpy keeps its arrays) and works on
 * numpy's buffers in place, so it must never touch memory it was not given: it has no data segment and uses
 * no stack (tools/build_kernel.py refuses a build whose code reads or writes a global, i.e. the stack pointer).
 * Arrays are row-major float32. Build: python tools/build_kernel.py (Debian's clang and lld).
 */
#include <wasm_simd128.h>

#define INLINE static inline __attribute__((always_inline))
#define EXPORT(name) __attribute__((export_name(name)))

/* --- the shared arithmetic of whole windows, clipping + Adam and sums of squares (window_impl.h, the same source
 * the native package compiles), here with vectors of 8 floats (two v128) and 4-row product tiles --------------- */
#include "vector.h"
#define VW 8
#define NAME(x) x##_simd
#define MR 4
#define NO_CONTRACT  /* the whole module is built with -ffp-contract=off */
typedef float f32x8 __attribute__((vector_size(32)));
typedef float f32x4 __attribute__((vector_size(16)));
#define LO(v) __builtin_shufflevector((v), (v), 0, 1, 2, 3)
#define HI(v) __builtin_shufflevector((v), (v), 4, 5, 6, 7)
#define JOIN(lo, hi) __builtin_shufflevector((lo), (hi), 0, 1, 2, 3, 4, 5, 6, 7)
/* b < a ? b : a and a < b ? b : a: one f32x4.pmin / f32x4.pmax per half (one minps / maxps on x86-64) */
INLINE f32x8 pmin8(f32x8 a, f32x8 b) {
    return JOIN(__builtin_wasm_pmin_f32x4(LO(a), LO(b)), __builtin_wasm_pmin_f32x4(HI(a), HI(b)));
}
INLINE f32x8 pmax8(f32x8 a, f32x8 b) {
    return JOIN(__builtin_wasm_pmax_f32x4(LO(a), LO(b)), __builtin_wasm_pmax_f32x4(HI(a), HI(b)));
}
#define VMIN(a, b) pmin8((a), (b))
#define VMAX(a, b) pmax8((a), (b))
#ifdef TINYRNN_RELAXED_SIMD  /* the relaxed build (tools/build_kernel.py): multiply-adds fused */
/* acc + a b and p x + c (a float c), each as two f32x4.relaxed_madd (one FMA each where the processor has FMA, as
 * x86-64 and ARM64 do): the products' tiles and tanh's polynomials */
INLINE f32x8 relaxed_madd(f32x8 acc, float a, f32x8 b) {
    const f32x4 av = {a, a, a, a};
    return JOIN(__builtin_wasm_relaxed_madd_f32x4(av, LO(b), LO(acc)),
                __builtin_wasm_relaxed_madd_f32x4(av, HI(b), HI(acc)));
}
INLINE f32x8 relaxed_poly(f32x8 p, f32x8 x, float c) {
    const f32x4 cv = {c, c, c, c};
    return JOIN(__builtin_wasm_relaxed_madd_f32x4(LO(p), LO(x), cv),
                __builtin_wasm_relaxed_madd_f32x4(HI(p), HI(x), cv));
}
#define MADD(acc, a, b) relaxed_madd((acc), (a), (b))
#define POLY(p, x, c) relaxed_poly((p), (x), (c))
#endif
#include "window_impl.h"

/* C (M, N) = [C +] A B over k < K, A(i, k) = A[i*sa_i + k*sa_k] (so A may be read transposed in place),
 * B(k, j) = B[k*ldb + j], C contiguous. Rows go 4 (or 1) at a time, columns 8, then 4, then 1 at a time. */
INLINE void block(int R, int K, const float *A, int sa_i, int sa_k, const float *B, int ldb, int j,
                  float *C, int ldc, int accumulate) {
    v128_t lo[4], hi[4];
    for (int r = 0; r < R; r++) {
        lo[r] = accumulate ? wasm_v128_load(C + r * ldc + j) : wasm_f32x4_splat(0.0f);
        hi[r] = accumulate ? wasm_v128_load(C + r * ldc + j + 4) : wasm_f32x4_splat(0.0f);
    }
    for (int k = 0; k < K; k++) {
        v128_t b_lo = wasm_v128_load(B + k * ldb + j), b_hi = wasm_v128_load(B + k * ldb + j + 4);
        for (int r = 0; r < R; r++) {
            v128_t a = wasm_f32x4_splat(A[r * sa_i + k * sa_k]);
            lo[r] = wasm_f32x4_add(lo[r], wasm_f32x4_mul(a, b_lo));
            hi[r] = wasm_f32x4_add(hi[r], wasm_f32x4_mul(a, b_hi));
        }
    }
    for (int r = 0; r < R; r++) {
        wasm_v128_store(C + r * ldc + j, lo[r]);
        wasm_v128_store(C + r * ldc + j + 4, hi[r]);
    }
}

INLINE void block4(int R, int K, const float *A, int sa_i, int sa_k, const float *B, int ldb, int j,
                   float *C, int ldc, int accumulate) {
    v128_t acc[4];
    for (int r = 0; r < R; r++) acc[r] = accumulate ? wasm_v128_load(C + r * ldc + j) : wasm_f32x4_splat(0.0f);
    for (int k = 0; k < K; k++) {
        v128_t b = wasm_v128_load(B + k * ldb + j);
        for (int r = 0; r < R; r++)
            acc[r] = wasm_f32x4_add(acc[r], wasm_f32x4_mul(wasm_f32x4_splat(A[r * sa_i + k * sa_k]), b));
    }
    for (int r = 0; r < R; r++) wasm_v128_store(C + r * ldc + j, acc[r]);
}

INLINE void block1(int R, int K, const float *A, int sa_i, int sa_k, const float *B, int ldb, int j,
                   float *C, int ldc, int accumulate) {
    float acc[4];
    for (int r = 0; r < R; r++) acc[r] = accumulate ? C[r * ldc + j] : 0.0f;
    for (int k = 0; k < K; k++)
        for (int r = 0; r < R; r++) acc[r] += A[r * sa_i + k * sa_k] * B[k * ldb + j];
    for (int r = 0; r < R; r++) C[r * ldc + j] = acc[r];
}

INLINE void row_block(int R, int N, int K, const float *A, int sa_i, int sa_k, const float *B, int ldb,
                      float *C, int accumulate) {
    int j = 0;
    for (; j + 8 <= N; j += 8) block(R, K, A, sa_i, sa_k, B, ldb, j, C, N, accumulate);
    for (; j + 4 <= N; j += 4) block4(R, K, A, sa_i, sa_k, B, ldb, j, C, N, accumulate);
    for (; j < N; j++) block1(R, K, A, sa_i, sa_k, B, ldb, j, C, N, accumulate);
}

static void gemm(int M, int N, int K, const float *A, int sa_i, int sa_k, const float *B, int ldb, float *C,
                 int accumulate) {
    int i = 0;
    for (; i + 4 <= M; i += 4) row_block(4, N, K, A + i * sa_i, sa_i, sa_k, B, ldb, C + i * N, accumulate);
    for (; i < M; i++) row_block(1, N, K, A + i * sa_i, sa_i, sa_k, B, ldb, C + i * N, accumulate);
}

EXPORT("sgemm")
void sgemm(int M, int N, int K, const float *A, int sa_i, int sa_k, const float *B, int ldb, float *C) {
    gemm(M, N, K, A, sa_i, sa_k, B, ldb, C, 0);
}

/* exp(z) in double precision for z in [lower, 0] or NaN (a caller clamps z first): exp(z) = 2^k p(r), z = k ln2 + r,
 * |r| <= ln2/2, p the degree-11 Taylor polynomial (truncation error < 1e-14); NaN propagates. */
INLINE v128_t exp_f64x2(v128_t z) {
    const double LOG2E = 0x1.71547652b82fep+0, LN2_HI = 0x1.62e42feep-1, LN2_LO = 0x1.a39ef35793c76p-33;
    v128_t k = wasm_f64x2_nearest(wasm_f64x2_mul(z, wasm_f64x2_splat(LOG2E)));
    v128_t r = wasm_f64x2_sub(wasm_f64x2_sub(z, wasm_f64x2_mul(k, wasm_f64x2_splat(LN2_HI))),
                              wasm_f64x2_mul(k, wasm_f64x2_splat(LN2_LO)));
    v128_t p = wasm_f64x2_splat(1.0 / 39916800.0);  /* 1/11! */
    static const double inv_factorial[] = {1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0, 1.0 / 5040.0,
                                           1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
    for (int n = 0; n < 11; n++) p = wasm_f64x2_add(wasm_f64x2_mul(p, r), wasm_f64x2_splat(inv_factorial[n]));
    v128_t two_k = wasm_i64x2_shl(wasm_i64x2_add(wasm_i64x2_extend_low_i32x4(wasm_i32x4_trunc_sat_f64x2_zero(k)),
                                                 wasm_i64x2_splat(1023)), 52);
    return wasm_f64x2_mul(p, two_k);
}

/* Applies a double-precision function of two lanes to four floats, rounding each result once. */
#define F32X4_VIA_F64X2(f, x) \
    wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(f(wasm_f64x2_promote_low_f32x4(x))), \
                       wasm_f32x4_demote_f64x2_zero(f(wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(x, x, 2, 3, 0, 1)))), \
                       0, 1, 4, 5)

/* tanh(y) for y >= 0 (or NaN): (1 - e) / (1 + e), e = exp(-2y). -2y is clamped at -19, where tanh is within
 * 1.2e-8 of 1 (1.0f after rounding). */
INLINE v128_t tanh_abs_f64x2(v128_t y) {
    v128_t e = exp_f64x2(wasm_f64x2_max(wasm_f64x2_mul(y, wasm_f64x2_splat(-2.0)), wasm_f64x2_splat(-19.0)));
    v128_t one = wasm_f64x2_splat(1.0);
    return wasm_f64x2_div(wasm_f64x2_sub(one, e), wasm_f64x2_add(one, e));
}

/* exp(z) for z <= 0 (or NaN), clamped at -104, where the float32 result is 0 anyway. */
INLINE v128_t exp_nonpositive_f64x2(v128_t z) {
    return exp_f64x2(wasm_f64x2_max(z, wasm_f64x2_splat(-104.0)));
}

/* tanh of four floats, each computed in double precision and rounded once: within 0.5 ulp (plus ~1e-11
 * relative). |x| < 2^-12 returns x itself (then tanh(x) rounds to x), which keeps signed zeros and subnormals. */
INLINE v128_t tanh_f32x4(v128_t x) {
    v128_t sign_bit = wasm_i32x4_splat((int)0x80000000u);
    v128_t ax = wasm_v128_andnot(x, sign_bit);
    v128_t t = wasm_v128_or(F32X4_VIA_F64X2(tanh_abs_f64x2, ax), wasm_v128_and(x, sign_bit));
    return wasm_v128_bitselect(x, t, wasm_f32x4_lt(ax, wasm_f32x4_splat(0x1p-12f)));
}

/* x[i] = tanh(x[i]) for i < n. */
INLINE void tanh_in_place(float *x, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(x + i, tanh_f32x4(wasm_v128_load(x + i)));
    for (; i < n; i++) x[i] = wasm_f32x4_extract_lane(tanh_f32x4(wasm_f32x4_splat(x[i])), 0);
}

/* a (T, B, H) holds W_hx x_t + b_h on entry and h_t on exit: h_t = tanh(a_t + h_{t-1} w), h_{-1} = h0 (B, H),
 * w (H, H) = W_hh transposed. */
EXPORT("rnn_forward")
void rnn_forward(int T, int B, int H, float *a, const float *w, const float *h0) {
    const float *h_prev = h0;
    for (int t = 0; t < T; t++) {
        float *a_t = a + t * B * H;
        gemm(B, H, H, h_prev, H, 1, w, H, a_t, 1);
        tanh_in_place(a_t, B * H);
        h_prev = a_t;
    }
}

/* Backward through the recurrence, t = T-1 .. 0:  g = dhs_t + dh;  da_t = g * das_t;  dh = da_t w.
 * das (T, B, H) holds 1 - h_t^2 on entry and dL/da_t on exit; dhs (T, B, H) is the gradient reaching h_t from
 * the output layer; dh (B, H) must be zero on entry and holds dL/dh0 on exit; w (H, H) = W_hh. If norms is not
 * null, norms[t] (float64) = ||g|| over the batch. */
EXPORT("rnn_backward")
void rnn_backward(int T, int B, int H, float *das, const float *dhs, const float *w, float *dh, double *norms) {
    for (int t = T - 1; t >= 0; t--) {
        float *da = das + t * B * H;
        const float *dh_out = dhs + t * B * H;
        double sum_sq = 0.0;
        for (int i = 0; i < B * H; i++) {
            float g = dh_out[i] + dh[i];
            sum_sq += (double)g * g;
            da[i] *= g;
        }
        if (norms) norms[t] = __builtin_sqrt(sum_sq);
        gemm(B, H, H, da, H, 1, w, H, dh, 0);
    }
}

/* --- the gated cells (core/tinyrnn/gru.py, lstm.py hold the equations and the numpy twins) ------------------
 * Element-wise work goes four floats at a time; a row's last H mod 4 floats go one at a time through the same
 * vector code (n = 1: splat in, lane 0 out), so both paths round identically. */

INLINE v128_t lane_load(const float *p, int n) { return n == 4 ? wasm_v128_load(p) : wasm_f32x4_splat(*p); }

INLINE void lane_store(float *p, v128_t v, int n) {
    if (n == 4) wasm_v128_store(p, v);
    else *p = wasm_f32x4_extract_lane(v, 0);
}

/* sum of the squares of the first n lanes of v, in double */
INLINE double sum_sq_n(v128_t v, int n) {
    double s = 0.0;
    for (int k = 0; k < n; k++) {
        float x = k == 0 ? wasm_f32x4_extract_lane(v, 0) : k == 1 ? wasm_f32x4_extract_lane(v, 1)
                : k == 2 ? wasm_f32x4_extract_lane(v, 2) : wasm_f32x4_extract_lane(v, 3);
        s += (double)x * x;
    }
    return s;
}

#define ADD wasm_f32x4_add
#define SUB wasm_f32x4_sub
#define MUL wasm_f32x4_mul
#define ONE wasm_f32x4_splat(1.0f)

/* σ(x) = (1 + tanh(x/2)) / 2, as ops.sigmoid_ computes it (never overflows). */
INLINE v128_t sigmoid_f32x4(v128_t x) {
    v128_t half = wasm_f32x4_splat(0.5f);
    return MUL(ADD(tanh_f32x4(MUL(x, half)), ONE), half);
}

/* x (T, B, 3H) holds W_ih x_t + b_ih on entry and the gates [r | z | n] on exit; hs (T, B, H) receives h_t, hn
 * (T, B, H) receives W_hn h_{t-1} + b_hn. w (H, 3H) = W_hh transposed, b (3H) = b_hh, h0 (B, H); hh (B, 3H) is
 * scratch. */
EXPORT("gru_forward")
void gru_forward(int T, int B, int H, float *x, const float *w, const float *b, const float *h0, float *hs,
                 float *hn, float *hh) {
    const float *h_prev = h0;
    for (int t = 0; t < T; t++) {
        gemm(B, 3 * H, H, h_prev, H, 1, w, 3 * H, hh, 0);
        for (int row = 0; row < B; row++) {
            float *g = x + (t * B + row) * 3 * H, *q = hh + row * 3 * H;
            for (int j = 0, n; j < H; j += n) {
                n = H - j >= 4 ? 4 : 1;
                v128_t r = sigmoid_f32x4(ADD(lane_load(g + j, n), ADD(lane_load(q + j, n), lane_load(b + j, n))));
                v128_t z = sigmoid_f32x4(ADD(lane_load(g + H + j, n), ADD(lane_load(q + H + j, n), lane_load(b + H + j, n))));
                v128_t hn_j = ADD(lane_load(q + 2 * H + j, n), lane_load(b + 2 * H + j, n));
                v128_t c = tanh_f32x4(ADD(lane_load(g + 2 * H + j, n), MUL(r, hn_j)));
                v128_t hp = lane_load(h_prev + row * H + j, n);
                lane_store(g + j, r, n);
                lane_store(g + H + j, z, n);
                lane_store(g + 2 * H + j, c, n);
                lane_store(hn + (t * B + row) * H + j, hn_j, n);
                lane_store(hs + (t * B + row) * H + j, ADD(MUL(SUB(hp, c), z), c), n);
            }
        }
        h_prev = hs + t * B * H;
    }
}

/* Backward through the GRU, t = T-1 .. 0. gates (T, B, 3H) holds [r | z | n] on entry and [da_r | da_z | da_n]
 * (the gradient w.r.t. W_ih x_t + b_ih) on exit; dhh (T, B, 3H) receives [da_r | da_z | da_n r] (w.r.t.
 * W_hh h_{t-1} + b_hh). hn, hs, dhs (T, B, H), h0 (B, H), w (3H, H) = W_hh; dh (B, H) must be zero on entry and
 * holds dL/dh0 on exit. If norms is not null, norms[t] (float64) = ||dL/dh_t|| over the batch. */
EXPORT("gru_backward")
void gru_backward(int T, int B, int H, float *gates, const float *hn, const float *hs, const float *h0,
                  const float *dhs, const float *w, float *dhh, float *dh, double *norms) {
    for (int t = T - 1; t >= 0; t--) {
        const float *h_prev = t ? hs + (t - 1) * B * H : h0;
        double sum_sq = 0.0;
        for (int row = 0; row < B; row++) {
            float *g = gates + (t * B + row) * 3 * H, *d = dhh + (t * B + row) * 3 * H, *dh_row = dh + row * H;
            const float *hn_row = hn + (t * B + row) * H, *dhs_row = dhs + (t * B + row) * H;
            for (int j = 0, n; j < H; j += n) {
                n = H - j >= 4 ? 4 : 1;
                v128_t grad = ADD(lane_load(dhs_row + j, n), lane_load(dh_row + j, n));
                sum_sq += sum_sq_n(grad, n);
                v128_t r = lane_load(g + j, n), z = lane_load(g + H + j, n), c = lane_load(g + 2 * H + j, n);
                v128_t da_n = MUL(MUL(grad, SUB(ONE, z)), SUB(ONE, MUL(c, c)));
                v128_t da_z = MUL(MUL(MUL(grad, SUB(lane_load(h_prev + row * H + j, n), c)), z), SUB(ONE, z));
                v128_t da_r = MUL(MUL(MUL(da_n, lane_load(hn_row + j, n)), r), SUB(ONE, r));
                lane_store(d + j, da_r, n);
                lane_store(d + H + j, da_z, n);
                lane_store(d + 2 * H + j, MUL(da_n, r), n);
                lane_store(g + j, da_r, n);
                lane_store(g + H + j, da_z, n);
                lane_store(g + 2 * H + j, da_n, n);
                lane_store(dh_row + j, MUL(grad, z), n);  /* the direct path; W_hh^T dhh is added below */
            }
        }
        if (norms) norms[t] = __builtin_sqrt(sum_sq);
        gemm(B, H, 3 * H, dhh + t * B * 3 * H, 3 * H, 1, w, H, dh, 1);
    }
}

/* x (T, B, 4H) holds W_ih x_t + b_ih + b_hh on entry and the gates [i | f | g | o] on exit; hs, cs (T, B, H)
 * receive h_t and c_t. w (H, 4H) = W_hh transposed; h0, c0 (B, H). */
EXPORT("lstm_forward")
void lstm_forward(int T, int B, int H, float *x, const float *w, const float *h0, const float *c0, float *hs,
                  float *cs) {
    const float *h_prev = h0, *c_prev = c0;
    for (int t = 0; t < T; t++) {
        gemm(B, 4 * H, H, h_prev, H, 1, w, 4 * H, x + t * B * 4 * H, 1);
        for (int row = 0; row < B; row++) {
            float *a = x + (t * B + row) * 4 * H;
            for (int j = 0, n; j < H; j += n) {
                n = H - j >= 4 ? 4 : 1;
                v128_t i = sigmoid_f32x4(lane_load(a + j, n)), f = sigmoid_f32x4(lane_load(a + H + j, n));
                v128_t g = tanh_f32x4(lane_load(a + 2 * H + j, n)), o = sigmoid_f32x4(lane_load(a + 3 * H + j, n));
                v128_t c = ADD(MUL(f, lane_load(c_prev + row * H + j, n)), MUL(i, g));
                lane_store(a + j, i, n);
                lane_store(a + H + j, f, n);
                lane_store(a + 2 * H + j, g, n);
                lane_store(a + 3 * H + j, o, n);
                lane_store(cs + (t * B + row) * H + j, c, n);
                lane_store(hs + (t * B + row) * H + j, MUL(tanh_f32x4(c), o), n);
            }
        }
        h_prev = hs + t * B * H;
        c_prev = cs + t * B * H;
    }
}

/* Backward through the LSTM, t = T-1 .. 0. gates (T, B, 4H) holds [i | f | g | o] on entry and dL/da_t on exit;
 * cs, dhs (T, B, H), c0 (B, H), w (4H, H) = W_hh; dh, dc (B, H) must be zero on entry and hold dL/dh0, dL/dc0 on
 * exit. If not null, norms_h[t], norms_c[t] (float64) = ||dL/dh_t||, ||dL/dc_t|| over the batch. */
EXPORT("lstm_backward")
void lstm_backward(int T, int B, int H, float *gates, const float *cs, const float *c0, const float *dhs,
                   const float *w, float *dh, float *dc, double *norms_h, double *norms_c) {
    for (int t = T - 1; t >= 0; t--) {
        const float *c_prev = t ? cs + (t - 1) * B * H : c0;
        double sum_h = 0.0, sum_c = 0.0;
        for (int row = 0; row < B; row++) {
            float *a = gates + (t * B + row) * 4 * H, *dc_row = dc + row * H;
            const float *c_row = cs + (t * B + row) * H;
            for (int j = 0, n; j < H; j += n) {
                n = H - j >= 4 ? 4 : 1;
                v128_t gh = ADD(lane_load(dhs + (t * B + row) * H + j, n), lane_load(dh + row * H + j, n));
                v128_t i = lane_load(a + j, n), f = lane_load(a + H + j, n);
                v128_t g = lane_load(a + 2 * H + j, n), o = lane_load(a + 3 * H + j, n);
                v128_t tc = tanh_f32x4(lane_load(c_row + j, n));
                v128_t d_c = ADD(lane_load(dc_row + j, n), MUL(MUL(gh, o), SUB(ONE, MUL(tc, tc))));
                sum_h += sum_sq_n(gh, n);
                sum_c += sum_sq_n(d_c, n);
                lane_store(a + j, MUL(MUL(MUL(d_c, g), i), SUB(ONE, i)), n);
                lane_store(a + H + j, MUL(MUL(MUL(d_c, lane_load(c_prev + row * H + j, n)), f), SUB(ONE, f)), n);
                lane_store(a + 2 * H + j, MUL(MUL(d_c, i), SUB(ONE, MUL(g, g))), n);
                lane_store(a + 3 * H + j, MUL(MUL(MUL(gh, tc), o), SUB(ONE, o)), n);
                lane_store(dc_row + j, MUL(d_c, f), n);
            }
        }
        if (norms_h) norms_h[t] = __builtin_sqrt(sum_h);
        if (norms_c) norms_c[t] = __builtin_sqrt(sum_c);
        gemm(B, H, 4 * H, gates + t * B * 4 * H, 4 * H, 1, w, H, dh, 0);
    }
}

/* Mean softmax cross-entropy over the rows of logits (N, V) against ids targets (N,) (int32, each < V):
 * dlogits (N, V) = (softmax(row) - onehot(target)) * scale, and per row, for the loss
 * loss = mean(log(sums) - target_terms): sums[n] = sum_v exp(logits[n, v] - m_n) and
 * target_terms[n] = logits[n, target] - m_n (float64), m_n the row's maximum. NaN in a row propagates.
 * dlogits may be logits itself (in place). */
EXPORT("softmax_xent")
void softmax_xent(int N, int V, const float *logits, const int *targets, float scale, float *dlogits,
                  double *target_terms, double *sums) {
    for (int n = 0; n < N; n++) {
        const float *x = logits + n * V;
        float *d = dlogits + n * V;
        int t = targets[n];
        float x_t = x[t];  /* read before d is written: dlogits may be logits itself */
        v128_t m4 = wasm_f32x4_splat(x[0]);
        int v = 0;
        for (; v + 4 <= V; v += 4) m4 = wasm_f32x4_max(m4, wasm_v128_load(x + v));
        for (; v < V; v++) m4 = wasm_f32x4_max(m4, wasm_f32x4_splat(x[v]));
        m4 = wasm_f32x4_max(m4, wasm_i32x4_shuffle(m4, m4, 2, 3, 0, 1));
        m4 = wasm_f32x4_max(m4, wasm_i32x4_shuffle(m4, m4, 1, 0, 3, 2));  /* every lane: the max (NaN wins) */
        v128_t sum = wasm_f64x2_splat(0.0);
        for (v = 0; v + 4 <= V; v += 4) {
            v128_t e = F32X4_VIA_F64X2(exp_nonpositive_f64x2, wasm_f32x4_sub(wasm_v128_load(x + v), m4));
            wasm_v128_store(d + v, e);
            sum = wasm_f64x2_add(sum, wasm_f64x2_add(wasm_f64x2_promote_low_f32x4(e),
                                                     wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(e, e, 2, 3, 0, 1))));
        }
        double total = wasm_f64x2_extract_lane(sum, 0) + wasm_f64x2_extract_lane(sum, 1);
        for (; v < V; v++) {
            float e = wasm_f32x4_extract_lane(
                F32X4_VIA_F64X2(exp_nonpositive_f64x2, wasm_f32x4_sub(wasm_f32x4_splat(x[v]), m4)), 0);
            d[v] = e;
            total += e;
        }
        v128_t factor = wasm_f32x4_splat((float)(scale / total));
        for (v = 0; v + 4 <= V; v += 4) wasm_v128_store(d + v, wasm_f32x4_mul(wasm_v128_load(d + v), factor));
        for (; v < V; v++) d[v] *= wasm_f32x4_extract_lane(factor, 0);
        float m = wasm_f32x4_extract_lane(m4, 0);
        d[t] -= scale;
        target_terms[n] = (double)x_t - (double)m;
        sums[n] = total;
    }
}

/* --- the exports of the shared arithmetic (window_impl.h; the native package's tinyrnn_* functions) -------- */

/* floats of work one window of cell (vector.h: 0 rnn, 1 gru, 2 lstm) needs */
EXPORT("window_size")
int window_size(int cell, int T, int B, int H, int V) { return (int)arena_of(cell, T, B, H, V).size; }

/* One window forward: the summed nats; state0 -> state_last (B, S); work (window_size floats) kept for backward. */
EXPORT("window_forward")
double window_forward(int cell, int T, int B, int H, int V, const float *P, const int *ids, const int *targets,
                      const float *state0, float *state_last, float *work) {
    return window_forward_simd(cell, T, B, H, V, P, ids, targets, state0, state_last, work);
}

/* Its backward pass: G (P's layout) = the gradient of g times the summed nats, dstate0 (B, S). */
EXPORT("window_backward")
void window_backward(int cell, int T, int B, int H, int V, const float *P, const int *ids, float g, float *G,
                     float *dstate0, float *work) {
    window_backward_simd(cell, T, B, H, V, P, ids, g, G, dstate0, work);
}

/* Clipping by value (clip; infinity: none), by norm (gscale) and one Adam step, as optim computes them, operation
 * for operation (so bit for bit), into new arrays; returns how many new parameters are not finite. */
EXPORT("adam")
int adam(int n, const float *P, const float *G, const float *M, const float *Vs, float clip, float gscale, float b1,
         float c1, float b2, float c2, float step, float eps, float *P_out, float *M_out, float *V_out) {
    return (int)adam_simd(n, P, G, M, Vs, clip, gscale, b1, c1, b2, c2, step, eps, P_out, M_out, V_out);
}

/* x += y over n floats: the sharded engine adds each helper's gradient into this worker's (engines/workers.py) */
EXPORT("add_into")
void add_into(int n, float *x, const float *y) {
    int i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(x + i, wasm_f32x4_add(wasm_v128_load(x + i), wasm_v128_load(y + i)));
    for (; i < n; i++) x[i] += y[i];
}

/* sum of clip(x, -clip, clip)^2 over n floats, in double */
EXPORT("sum_squares")
double sum_squares(int n, const float *x, float clip) { return sum_squares_simd(n, x, clip); }
