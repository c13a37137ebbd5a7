/* One variant of the native kernels, included by kernels.c once per instruction set (NAME() appends the
 * variant's suffix; the including file sets the target). Everything is float32, row-major and contiguous.
 * vf is 16 floats; GCC lowers it to one AVX-512 register, two AVX2 ones or four SSE ones. */

/* C (M, N) = [C +] A B over k < K with A(i, k) = A[i*sai + k*sak] (A may be read transposed in place) and
 * B(k, j) = B[k*ldb + j]. Tiles of MR rows x 16 columns (MR independent accumulators hide the FMA latency);
 * single rows take 128 (then 64, then 16) columns at a time; the last N % 16 columns are scalar. */
static void NAME(gemm)(long M, long N, long K, const float *A, long sai, long sak, const float *B, long ldb,
                       float *C, long ldc, int accumulate) {
    long i = 0;
    for (; i + MR <= M; i += MR) {
        for (long j = 0; j + 16 <= N; j += 16) {
            vf acc[MR];
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) acc[r] = accumulate ? load(C + (i + r) * ldc + j) : (vf){0};
            for (long k = 0; k < K; k++) {
                vf b = load(B + k * ldb + j);
                const float *a = A + i * sai + k * sak;
#pragma GCC unroll 8
                for (int r = 0; r < MR; r++) acc[r] += a[r * sai] * b;
            }
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) store(C + (i + r) * ldc + j, acc[r]);
        }
    }
    for (; i < M; i++) {  /* the remaining rows, one at a time (B = 1 is all of them) */
        const float *a = A + i * sai;
        float *c = C + i * ldc, *c_row = c;
        long j = 0;
        for (; j + 128 <= N; j += 128) {  /* eight independent accumulators: FMA throughput, not latency */
            vf c[8];
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) c[q] = accumulate ? load(c_row + j + 16 * q) : (vf){0};
            for (long k = 0; k < K; k++) {
                float ak = a[k * sak];
                const float *b = B + k * ldb + j;
#pragma GCC unroll 8
                for (int q = 0; q < 8; q++) c[q] += ak * load(b + 16 * q);
            }
#pragma GCC unroll 8
            for (int q = 0; q < 8; q++) store(c_row + j + 16 * q, c[q]);
        }
        for (; j + 64 <= N; j += 64) {
            vf c0 = accumulate ? load(c + j) : (vf){0}, c1 = accumulate ? load(c + j + 16) : (vf){0};
            vf c2 = accumulate ? load(c + j + 32) : (vf){0}, c3 = accumulate ? load(c + j + 48) : (vf){0};
            for (long k = 0; k < K; k++) {
                float ak = a[k * sak];
                const float *b = B + k * ldb + j;
                c0 += ak * load(b), c1 += ak * load(b + 16), c2 += ak * load(b + 32), c3 += ak * load(b + 48);
            }
            store(c + j, c0), store(c + j + 16, c1), store(c + j + 32, c2), store(c + j + 48, c3);
        }
        for (; j + 16 <= N; j += 16) {
            vf c0 = accumulate ? load(c + j) : (vf){0};
            for (long k = 0; k < K; k++) c0 += a[k * sak] * load(B + k * ldb + j);
            store(c + j, c0);
        }
    }
    for (long j = N / 16 * 16; j < N; j++)  /* the last columns of every row */
        for (long r = 0; r < M; r++) {
            float s = accumulate ? C[r * ldc + j] : 0.0f;
            for (long k = 0; k < K; k++) s += A[r * sai + k * sak] * B[k * ldb + j];
            C[r * ldc + j] = s;
        }
}

/* tanh, Eigen's (and so XLA's) rational approximation: x P(x^2) / Q(x^2) on [-7.905, 7.905], x itself below
 * 4e-4 in magnitude; a few ulp from the correctly rounded value. */
static inline vf NAME(tanh_v)(vf x) {
    const float clamp = 7.90531110763549805f;
    vf xc = x;
    vi big = xc > clamp, small = xc < -clamp;
    xc = vselect(big, (vf){0} + clamp, xc);
    xc = vselect(small, (vf){0} - clamp, xc);
    vf x2 = xc * xc;
    vf p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * xc;
    vf q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    vf ax = vselect(x < 0, -x, x);
    return vselect(ax < 0.0004f, x, p / q);
}

static void NAME(tanh_in_place)(float *x, long n) {
    long i = 0;
    for (; i + 16 <= n; i += 16) store(x + i, NAME(tanh_v)(load(x + i)));
    if (i < n) {
        vf t = {0};
        memcpy(&t, x + i, (size_t)(n - i) * 4);
        t = NAME(tanh_v)(t);
        memcpy(x + i, &t, (size_t)(n - i) * 4);
    }
}

/* exp(z) for z <= 0 (Cephes' expf): z = n ln2 + r, |r| <= ln2 / 2, exp(r) by a degree-6 polynomial, times 2^n;
 * 0 below -87.3 (where the float result is 0 or subnormal anyway). */
static inline vf NAME(exp_nonpositive_v)(vf z) {
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

/* Mean softmax cross-entropy of logits (N, V) against ids targets (N,), and dL/dlogits = (p - onehot) / N
 * written over the logits. Rows are padded(V) floats apart (the padding is overwritten: it ends as 0).
 * Returns the sum over rows of -log p[target] (the caller divides by N). */
static double NAME(softmax_xent)(long N, long V, float *logits, const int32_t *targets) {
    const long Vp = padded(V);
    double total = 0.0;
    const float inv_n = 1.0f / (float)N;
    for (long r = 0; r < N; r++) {
        float *x = logits + r * Vp;
        for (long j = V; j < Vp; j++) x[j] = -INFINITY;  /* exp gives 0 there */
        vf mx_v = load(x);
        for (long j = 16; j < Vp; j += 16) {
            vf y = load(x + j);
            mx_v = vselect(y > mx_v, y, mx_v);
        }
        float mx = mx_v[0];
        for (int k = 1; k < 16; k++) mx = mx_v[k] > mx ? mx_v[k] : mx;
        float target_shifted = x[targets[r]] - mx;
        vf acc = {0};
        for (long j = 0; j < Vp; j += 16) {
            vf e = NAME(exp_nonpositive_v)(load(x + j) - mx);
            store(x + j, e);
            acc += e;
        }
        float sum = 0.0f;
        for (int k = 0; k < 16; k++) sum += acc[k];
        total += log((double)sum) - (double)target_shifted;
        const float scale = inv_n / sum;
        for (long j = 0; j < Vp; j += 16) store(x + j, load(x + j) * scale);
        x[targets[r]] -= inv_n;
    }
    return total;
}

/* out (N, H) rows: out[n] = W_t[ids[n]] + bias, W_t (V, H) (the transposed W_hx: the embedding lookup). */
static void NAME(embed)(long N, long H, const float *W_t, const float *bias, const int32_t *ids, float *out) {
    for (long n = 0; n < N; n++) {
        const float *w = W_t + (long)ids[n] * H;
        float *o = out + n * H;
        for (long j = 0; j < H; j++) o[j] = w[j] + bias[j];
    }
}

/* x (R, C) -> out (C, ldo) with out[c*ldo + r] = x[r*C + c], in 16 x 16 tiles (both sides stay in L1). */
static void NAME(transpose)(long R, long C, const float *x, float *out, long ldo) {
    for (long r0 = 0; r0 < R; r0 += 16)
        for (long c0 = 0; c0 < C; c0 += 16) {
            long r1 = r0 + 16 < R ? r0 + 16 : R, c1 = c0 + 16 < C ? c0 + 16 : C;
            for (long r = r0; r < r1; r++)
                for (long c = c0; c < c1; c++) out[c * ldo + r] = x[r * C + c];
        }
}

/* The forward pass of one window. P is the flat parameters (W_hx (H, V), W_hh (H, H), b_h (H), W_yh (V, H),
 * b_y (V), in that order); ids and targets are time-major (T, B); hs (T + 1, B, H) holds h0 in hs[0] on entry and
 * h_1..h_T after; logits (T*B, padded(V)) receives dL/dlogits (0 in the padding); work has room for
 * (V + H + padded(V)) * H floats.
 * Returns the summed cross-entropy (nats; the mean is it / (T*B)). */
static double NAME(window_forward)(long T, long B, long H, long V, const float *P, const int32_t *ids,
                                   const int32_t *targets, float *hs, float *logits, float *work) {
    const float *W_hx = P, *W_hh = P + H * V, *b_h = W_hh + H * H, *W_yh = b_h + H, *b_y = W_yh + V * H;
    const long Vp = padded(V);
    float *W_hx_t = work, *W_hh_t = work + V * H, *W_yh_t = W_hh_t + H * H;  /* (V, H), (H, H), (H, Vp) */
    NAME(transpose)(H, V, W_hx, W_hx_t, H);
    NAME(transpose)(H, H, W_hh, W_hh_t, H);
    NAME(transpose)(V, H, W_yh, W_yh_t, Vp);
    for (long k = 0; k < H; k++)
        for (long j = V; j < Vp; j++) W_yh_t[k * Vp + j] = 0.0f;
    NAME(embed)(T * B, H, W_hx_t, b_h, ids, hs + B * H);
    for (long t = 0; t < T; t++) {
        float *h = hs + (t + 1) * B * H;
        NAME(gemm)(B, H, H, h - B * H, H, 1, W_hh_t, H, h, H, 1);
        NAME(tanh_in_place)(h, B * H);
    }
    const long N = T * B;
    for (long n = 0; n < N; n++) {
        memcpy(logits + n * Vp, b_y, (size_t)V * 4);
        for (long j = V; j < Vp; j++) logits[n * Vp + j] = 0.0f;
    }
    NAME(gemm)(N, Vp, H, hs + B * H, H, 1, W_yh_t, Vp, logits, Vp, 1);
    return NAME(softmax_xent)(N, V, logits, targets);
}

/* The backward pass of the window that window_forward computed: from dlogits (T*B, padded(V)) (scaled by g, the
 * gradient reaching the loss) and hs, the flat gradient G (the layout of P) and dL/dh0 (B, H). das (T, B, H) and
 * work ((V + 2) * H floats) are scratch. */
static void NAME(window_backward)(long T, long B, long H, long V, const float *P, const int32_t *ids,
                                  const float *hs, const float *dlogits, float g, float *G, float *dh0,
                                  float *das, float *work) {
    const float *W_hh = P + H * V, *W_yh = W_hh + H * H + H;
    float *dW_hx = G, *dW_hh = G + H * V, *db_h = dW_hh + H * H, *dW_yh = db_h + H, *db_y = dW_yh + V * H;
    const long N = T * B, Vp = padded(V);
    const float *h = hs + B * H;  /* h_1..h_T as (N, H) */
    /* dhs = dlogits W_yh, into das; dW_yh = dlogits^T h; db_y = column sums */
    NAME(gemm)(N, H, V, dlogits, Vp, 1, W_yh, H, das, H, 0);
    NAME(gemm)(V, H, N, dlogits, 1, Vp, h, H, dW_yh, H, 0);
    for (long j = 0; j < V; j++) db_y[j] = 0.0f;
    for (long n = 0; n < N; n++)
        for (long j = 0; j < V; j++) db_y[j] += dlogits[n * Vp + j];
    if (g != 1.0f) {
        for (long i = 0; i < N * H; i++) das[i] *= g;
        for (long i = 0; i < V * H; i++) dW_yh[i] *= g;
        for (long j = 0; j < V; j++) db_y[j] *= g;
    }
    /* the time loop, from T-1 down: da_t = (dhs_t + dh) (1 - h_t^2), dh = da_t W_hh */
    float *dh = dh0;
    for (long i = 0; i < B * H; i++) dh[i] = 0.0f;
    for (long t = T - 1; t >= 0; t--) {
        float *da = das + t * B * H;
        const float *ht = h + t * B * H;
        for (long i = 0; i < B * H; i++) da[i] = (da[i] + dh[i]) * (1.0f - ht[i] * ht[i]);
        NAME(gemm)(B, H, H, da, H, 1, W_hh, H, dh, H, 0);
    }
    /* dW_hh = sum_t da_t^T h_{t-1} (hs[0..T-1] is h_0..h_{T-1}); db_h; dW_hx by id */
    NAME(gemm)(H, H, N, das, 1, H, hs, H, dW_hh, H, 0);
    for (long j = 0; j < H; j++) db_h[j] = 0.0f;
    float *dW_hx_t = work;  /* (V, H) */
    memset(dW_hx_t, 0, (size_t)(V * H) * 4);
    for (long n = 0; n < N; n++) {
        const float *da = das + n * H;
        float *row = dW_hx_t + (long)ids[n] * H;
        for (long j = 0; j < H; j++) row[j] += da[j], db_h[j] += da[j];
    }
    NAME(transpose)(V, H, dW_hx_t, dW_hx, V);
}

/* Global-norm clipping and Adam over the flat arrays in one pass: g = G * gscale, then numpy's Adam in float32
 * (optim.Adam, same operations in the same order; no fused multiply-adds), into P_out, M_out, V_out. Returns how
 * many new parameters are not finite. (g * 1.0f is g exactly, so gscale = 1 is "no clipping".) */
__attribute__((optimize("fp-contract=off")))
static long NAME(adam)(long n, const float *restrict P, const float *restrict G, const float *restrict M,
                       const float *restrict Vs, float gscale, float b1, float c1, float b2, float c2, float step,
                       float eps, float *restrict P_out, float *restrict M_out, float *restrict V_out) {
    for (long i = 0; i < n; i++) {
        float g = G[i] * gscale;
        float m = b1 * M[i] + c1 * g;
        float v = b2 * Vs[i] + c2 * (g * g);
        M_out[i] = m, V_out[i] = v;
        P_out[i] = P[i] - step * m / (sqrtf(v) + eps);
    }
    long bad = 0;
    for (long i = 0; i < n; i++) bad += !(P_out[i] - P_out[i] == 0.0f);
    return bad;
}

/* sum of squares of x (n,): 16 float32 partial sums, added in double. */
static double NAME(sum_squares)(long n, const float *x) {
    double s = 0.0;
    vf acc = {0};
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        vf v = load(x + i);
        acc += v * v;
    }
    for (int k = 0; k < 16; k++) s += acc[k];
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
