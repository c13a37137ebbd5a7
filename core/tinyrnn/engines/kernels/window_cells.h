/* The three cells' recurrences over a whole window, forward and backward (part of window_impl.h, included by it
 * once per variant). Equations: ops.py (tanh RNN), gru.py and lstm.py (PyTorch's gate orders); each numpy
 * function's operations are done here in the same order, so the builds differ from it only in rounding.
 *
 * Forward: from the state in work (hs[0], and cs[0] for the LSTM) over T steps; hs[1..T] feed the output layer.
 * Backward: from dhs (dL/dh_t from the output layer, already scaled) to the cell's parameter gradients in Gr
 * (P's layout) and dh, dc (dL/dh_0, dL/dc_0) in work. `a` is the layout of work (vector.h). Element-wise loops
 * go VW floats at a time; a row's last H mod VW floats go one at a time through the same vector code. */

#define LANES(j, full, s, n) for (long j = 0, s; j < (n); j += s) \
    for (int full = (n) - j >= VW, once_ = ((s) = full ? VW : 1); once_; once_ = 0)

/* ---- the tanh RNN: h_t = tanh(W_hx x_t + b_h + W_hh h_{t-1}) -------------------------------------------- */

KERNEL void NAME(rnn_forward)(long T, long B, long H, long V, const float *P, const int *ids, float *work,
                              arena_t a) {
    const float *W_hx = P, *W_hh = P + H * V, *b_h = W_hh + H * H;
    float *hs = work + a.hs, *W_hx_t = work + a.wt, *W_hh_t = W_hx_t + V * H;  /* (V, H), (H, H) */
    NAME(transpose)(H, V, W_hx, W_hx_t, H);
    NAME(transpose)(H, H, W_hh, W_hh_t, H);
    NAME(embed)(T * B, H, W_hx_t, b_h, ids, hs + B * H);
    for (long t = 0; t < T; t++) {
        float *h = hs + (t + 1) * B * H;
        NAME(gemm)(B, H, H, h - B * H, H, 1, W_hh_t, H, h, H, 1);
        NAME(tanh_in_place)(h, B * H);
    }
}

/* da_t = (dhs_t + dh) (1 - h_t^2), dh = da_t W_hh, from t = T-1 down; then dW_hh, db_h, dW_hx. */
KERNEL void NAME(rnn_backward)(long T, long B, long H, long V, const float *P, const int *ids, float *Gr,
                               float *work, arena_t a) {
    const float *W_hh = P + H * V, *hs = work + a.hs, *h = hs + B * H;
    float *dW_hx = Gr, *dW_hh = Gr + H * V, *db_h = dW_hh + H * H;
    float *das = work + a.dhs, *dh = work + a.dh;
    const long N = T * B;
    for (long i = 0; i < B * H; i++) dh[i] = 0.0f;
    for (long t = T - 1; t >= 0; t--) {
        float *da = das + t * B * H;
        const float *ht = h + t * B * H;
        for (long i = 0; i < B * H; i++) da[i] = (da[i] + dh[i]) * (1.0f - ht[i] * ht[i]);
        NAME(gemm)(B, H, H, da, H, 1, W_hh, H, dh, H, 0);
    }
    NAME(gemm)(H, H, N, das, 1, H, hs, H, dW_hh, H, 0);  /* sum_t da_t^T h_{t-1} */
    NAME(column_sums)(N, H, das, db_h);
    NAME(scatter_ids)(N, H, V, ids, das, dW_hx, work + a.wt);
}

/* The gated cells' start: x (N, C) = the embedding of ids (W_ih's columns) + bias, and W_hh (C, H) transposed;
 * wt receives W_ih transposed (V, C), then W_hh transposed (H, C), which is returned. */
KERNEL const float *NAME(gated_inputs)(long N, long C, long H, long V, const float *W_ih, const float *W_hh,
                                       const float *bias, const int *ids, float *x, float *wt) {
    float *W_hh_t = wt + V * C;
    NAME(transpose)(C, V, W_ih, wt, C);
    NAME(transpose)(C, H, W_hh, W_hh_t, C);
    NAME(embed)(N, C, wt, bias, ids, x);
    return W_hh_t;
}

/* ---- the GRU, gates [r | z | n] (gru.py) ------------------------------------------------------------------ */

KERNEL void NAME(gru_forward)(long T, long B, long H, long V, const float *P, const int *ids, float *work,
                              arena_t a) {
    const long C = 3 * H;
    const float *W_ih = P, *W_hh = P + C * V, *b_ih = W_hh + C * H, *b_hh = b_ih + C;
    float *hs = work + a.hs, *x = work + a.gates, *hn = work + a.hn, *hh = work + a.dhh;  /* hh: (B, 3H) */
    const float *W_hh_t = NAME(gated_inputs)(T * B, C, H, V, W_ih, W_hh, b_ih, ids, x, work + a.wt);
    for (long t = 0; t < T; t++) {
        const float *h_prev = hs + t * B * H;
        float *h = hs + (t + 1) * B * H;
        NAME(gemm)(B, C, H, h_prev, H, 1, W_hh_t, C, hh, C, 0);
        for (long row = 0; row < B; row++) {
            float *g = x + (t * B + row) * C, *hn_row = hn + (t * B + row) * H;
            const float *q = hh + row * C;
            LANES(j, full, s, H) {
                vf r = NAME(sigmoid_v)(load_n(g + j, full) + (load_n(q + j, full) + load_n(b_hh + j, full)));
                vf z = NAME(sigmoid_v)(load_n(g + H + j, full) +
                                       (load_n(q + H + j, full) + load_n(b_hh + H + j, full)));
                vf hn_j = load_n(q + 2 * H + j, full) + load_n(b_hh + 2 * H + j, full);
                vf n = NAME(tanh_v)(load_n(g + 2 * H + j, full) + r * hn_j);
                vf hp = load_n(h_prev + row * H + j, full);
                store_n(g + j, r, full);
                store_n(g + H + j, z, full);
                store_n(g + 2 * H + j, n, full);
                store_n(hn_row + j, hn_j, full);
                store_n(h + row * H + j, (hp - n) * z + n, full);
            }
        }
    }
}

KERNEL void NAME(gru_backward)(long T, long B, long H, long V, const float *P, const int *ids, float *Gr,
                               float *work, arena_t a) {
    const long C = 3 * H, N = T * B;
    const float *W_hh = P + C * V, *hs = work + a.hs, *hn = work + a.hn, *dhs = work + a.dhs;
    float *dW_ih = Gr, *dW_hh = Gr + C * V, *db_ih = dW_hh + C * H, *db_hh = db_ih + C;
    float *gates = work + a.gates, *dhh = work + a.dhh, *dh = work + a.dh;
    for (long i = 0; i < B * H; i++) dh[i] = 0.0f;
    for (long t = T - 1; t >= 0; t--) {
        const float *h_prev = hs + t * B * H;
        for (long row = 0; row < B; row++) {
            const long at = t * B + row;
            float *g = gates + at * C, *d = dhh + at * C, *dh_row = dh + row * H;
            LANES(j, full, s, H) {
                vf grad = load_n(dhs + at * H + j, full) + load_n(dh_row + j, full);
                vf r = load_n(g + j, full), z = load_n(g + H + j, full), n = load_n(g + 2 * H + j, full);
                vf da_n = grad * (1.0f - z) * (1.0f - n * n);
                vf da_z = grad * (load_n(h_prev + row * H + j, full) - n) * z * (1.0f - z);
                vf da_r = da_n * load_n(hn + at * H + j, full) * r * (1.0f - r);
                store_n(d + j, da_r, full);
                store_n(d + H + j, da_z, full);
                store_n(d + 2 * H + j, da_n * r, full);
                store_n(g + j, da_r, full);
                store_n(g + H + j, da_z, full);
                store_n(g + 2 * H + j, da_n, full);
                store_n(dh_row + j, grad * z, full);  /* the direct path; W_hh^T dhh is added below */
            }
        }
        NAME(gemm)(B, H, C, dhh + t * B * C, C, 1, W_hh, H, dh, H, 1);
    }
    NAME(gemm)(C, H, N, dhh, 1, C, hs, H, dW_hh, H, 0);  /* sum_t dhh_t^T h_{t-1} */
    NAME(column_sums)(N, C, gates, db_ih);
    NAME(column_sums)(N, C, dhh, db_hh);
    NAME(scatter_ids)(N, C, V, ids, gates, dW_ih, work + a.wt);
}

/* ---- the LSTM, gates [i | f | g | o] (lstm.py) ------------------------------------------------------------ */

KERNEL void NAME(lstm_forward)(long T, long B, long H, long V, const float *P, const int *ids, float *work,
                               arena_t a) {
    const long C = 4 * H;
    const float *W_ih = P, *W_hh = P + C * V, *b_ih = W_hh + C * H, *b_hh = b_ih + C;
    float *hs = work + a.hs, *cs = work + a.cs, *tc = work + a.tc, *x = work + a.gates, *bias = work + a.bias;
    for (long j = 0; j < C; j++) bias[j] = b_ih[j] + b_hh[j];
    const float *W_hh_t = NAME(gated_inputs)(T * B, C, H, V, W_ih, W_hh, bias, ids, x, work + a.wt);
    for (long t = 0; t < T; t++) {
        NAME(gemm)(B, C, H, hs + t * B * H, H, 1, W_hh_t, C, x + t * B * C, C, 1);
        for (long row = 0; row < B; row++) {
            float *g4 = x + (t * B + row) * C;
            const float *c_prev = cs + t * B * H + row * H;
            float *c_row = cs + (t + 1) * B * H + row * H, *h_row = hs + (t + 1) * B * H + row * H;
            float *tc_row = tc + (t * B + row) * H;
            LANES(j, full, s, H) {
                vf i = NAME(sigmoid_v)(load_n(g4 + j, full)), f = NAME(sigmoid_v)(load_n(g4 + H + j, full));
                vf g = NAME(tanh_v)(load_n(g4 + 2 * H + j, full)), o = NAME(sigmoid_v)(load_n(g4 + 3 * H + j, full));
                vf c = f * load_n(c_prev + j, full) + i * g;
                vf tanh_c = NAME(tanh_v)(c);
                store_n(g4 + j, i, full);
                store_n(g4 + H + j, f, full);
                store_n(g4 + 2 * H + j, g, full);
                store_n(g4 + 3 * H + j, o, full);
                store_n(c_row + j, c, full);
                store_n(tc_row + j, tanh_c, full);
                store_n(h_row + j, tanh_c * o, full);
            }
        }
    }
}

KERNEL void NAME(lstm_backward)(long T, long B, long H, long V, const float *P, const int *ids, float *Gr,
                                float *work, arena_t a) {
    const long C = 4 * H, N = T * B;
    const float *W_hh = P + C * V, *hs = work + a.hs, *cs = work + a.cs, *tc = work + a.tc, *dhs = work + a.dhs;
    float *dW_ih = Gr, *dW_hh = Gr + C * V, *db_ih = dW_hh + C * H, *db_hh = db_ih + C;
    float *gates = work + a.gates, *dh = work + a.dh, *dc = work + a.dc;
    for (long i = 0; i < B * H; i++) dh[i] = 0.0f, dc[i] = 0.0f;
    for (long t = T - 1; t >= 0; t--) {
        for (long row = 0; row < B; row++) {
            const long at = t * B + row;
            float *g4 = gates + at * C, *dc_row = dc + row * H;
            const float *c_prev = cs + t * B * H + row * H, *tc_row = tc + at * H;
            LANES(j, full, s, H) {
                vf gh = load_n(dhs + at * H + j, full) + load_n(dh + row * H + j, full);
                vf i = load_n(g4 + j, full), f = load_n(g4 + H + j, full);
                vf g = load_n(g4 + 2 * H + j, full), o = load_n(g4 + 3 * H + j, full);
                vf tanh_c = load_n(tc_row + j, full);
                vf d_c = load_n(dc_row + j, full) + gh * o * (1.0f - tanh_c * tanh_c);
                store_n(g4 + j, d_c * g * i * (1.0f - i), full);
                store_n(g4 + H + j, d_c * load_n(c_prev + j, full) * f * (1.0f - f), full);
                store_n(g4 + 2 * H + j, d_c * i * (1.0f - g * g), full);
                store_n(g4 + 3 * H + j, gh * tanh_c * o * (1.0f - o), full);
                store_n(dc_row + j, d_c * f, full);
            }
        }
        NAME(gemm)(B, H, C, gates + t * B * C, C, 1, W_hh, H, dh, H, 0);
    }
    NAME(gemm)(C, H, N, gates, 1, C, hs, H, dW_hh, H, 0);  /* sum_t da_t^T h_{t-1} */
    NAME(column_sums)(N, C, gates, db_ih);
    for (long j = 0; j < C; j++) db_hh[j] = db_ih[j];
    NAME(scatter_ids)(N, C, V, ids, gates, dW_ih, work + a.wt);
}

#undef LANES
