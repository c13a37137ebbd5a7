/* What every build of tinyrnn's window kernels shares before window_impl.h: the window's cells, the layout of its
 * work buffer and a scalar log. Included by native/tinyrnn_native/kernels.c (GCC, x86-64 or any other processor)
 * and by kernels/simd.c (clang, WebAssembly SIMD128). Each variant's vector type is window_impl.h's (its includer
 * sets VW, the floats per vector). Nothing here calls the C library: the WebAssembly build has none. */
#ifndef TINYRNN_VECTOR_H
#define TINYRNN_VECTOR_H

#define INLINE static inline __attribute__((always_inline))
#define KERNEL static __attribute__((unused))

/* logits rows are padded to 16 floats (whole vectors of every variant): the row stride of a (., V) logits buffer */
INLINE long padded(long V) { return (V + 15) / 16 * 16; }

/* log(x) in double for x > 0 (the softmax's row sums, >= 1): x = m 2^e with m in [sqrt(1/2), sqrt(2)),
 * log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to s^23 (error < 1e-17). NaN and
 * infinity return themselves. */
INLINE double log_d(double x) {
    if (!(x < 1.7976931348623157e308)) return x;
    unsigned long long bits;
    __builtin_memcpy(&bits, &x, 8);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    __builtin_memcpy(&m, &bits, 8);
    if (m > 1.4142135623730951) m *= 0.5, e += 1;
    double s = (m - 1.0) / (m + 1.0), s2 = s * s, sum = 1.0 / 23.0;
    for (int k = 21; k >= 1; k -= 2) sum = sum * s2 + 1.0 / k;
    return (double)e * 0.6931471805599453 + 2.0 * s * sum;
}

/* The cells (the Python side's CELL_IDS): parameters in model.ModelConfig.param_shapes() order, G gate blocks.
 *   RNN  W_hx (H, V), W_hh (H, H), b_h (H), W_yh (V, H), b_y (V)                        state h      (B, H)
 *   GRU  W_ih (3H, V), W_hh (3H, H), b_ih (3H), b_hh (3H), W_yh (V, H), b_y (V)  [r|z|n]  state h      (B, H)
 *   LSTM W_ih (4H, V), W_hh (4H, H), b_ih (4H), b_hh (4H), W_yh (V, H), b_y (V)  [i|f|g|o] state [h|c] (B, 2H) */
enum { CELL_RNN = 0, CELL_GRU = 1, CELL_LSTM = 2 };
INLINE long gates_of(int cell) { return cell == CELL_RNN ? 1 : cell == CELL_GRU ? 3 : 4; }

/* Offsets (floats) into one window's work buffer, which window_forward fills and window_backward reads; each
 * part starts on a 64-byte boundary (given a 64-byte aligned buffer). The one home of the window's buffer sizes:
 * callers ask window_size for the total. */
typedef struct {
    long hs;       /* (T + 1, B, H): h_0 .. h_T                          */
    long cs;       /* (T + 1, B, H): c_0 .. c_T (LSTM)                   */
    long tc;       /* (T, B, H): tanh(c_t) (LSTM)                        */
    long gates;    /* (T, B, G H): the gates, then their gradients (GRU, LSTM) */
    long hn;       /* (T, B, H): W_hn h_{t-1} + b_hn (GRU)               */
    long dhh;      /* (T, B, 3H): the hidden side's gate gradients (GRU); (B, 3H) scratch in the forward pass */
    long bias;     /* (G H): b_ih + b_hh (LSTM)                          */
    long dlogits;  /* (T B, padded(V)): dL/dlogits of the summed nats    */
    long dhs;      /* (T, B, H): dL/dh_t from the output layer (RNN: then dL/da_t) */
    long dh, dc;   /* (B, H): dL/dh, dL/dc carried backwards             */
    long wt;       /* transposed weights (forward) / dW_ih transposed (backward) */
    long size;
} arena_t;

INLINE arena_t arena_of(int cell, long T, long B, long H, long V) {
    const long N = T * B, G = gates_of(cell), Vp = padded(V);
    const int lstm = cell == CELL_LSTM, gru = cell == CELL_GRU;
    arena_t a;
    long top = 0;
#define TAKE(field, n) (a.field = top, top += ((n) + 15) / 16 * 16)
    TAKE(hs, (T + 1) * B * H);
    TAKE(cs, lstm ? (T + 1) * B * H : 0);
    TAKE(tc, lstm ? N * H : 0);
    TAKE(gates, cell == CELL_RNN ? 0 : N * G * H);
    TAKE(hn, gru ? N * H : 0);
    TAKE(dhh, gru ? N * 3 * H : 0);
    TAKE(bias, lstm ? G * H : 0);
    TAKE(dlogits, N * Vp);
    TAKE(dhs, N * H);
    TAKE(dh, B * H);
    TAKE(dc, lstm ? B * H : 0);
    TAKE(wt, (V + H) * G * H + H * Vp);
#undef TAKE
    a.size = top;
    return a;
}

#endif
