/* tinyrnn's native kernels: one training window of any cell (the tanh RNN, the GRU, the LSTM; forward and
 * backward, every time step inside one call), and clipping + Adam over one flat parameter buffer, in float32 with
 * SIMD. core/tinyrnn/engines/native.py calls them through ctypes.
 *
 * The arithmetic is not here: it is core/tinyrnn/engines/kernels/window_impl.h (with vector.h and window_cells.h), the
 * one source the browser's WebAssembly module (kernels/simd.c) compiles too; setup.py puts that directory on the
 * include path. The numpy code in core/tinyrnn/ (ops.py, gru.py, lstm.py, optim.py) stays the reference both are
 * tested against (tests/test_native_kernels.py, tests/test_wasm_flat.py).
 *
 * The arithmetic is compiled once per instruction set (x86-64: AVX-512, AVX2 + FMA, and the baseline), each with
 * vectors of one register (16, 8 and 4 floats: GCC lowers wider vectors through memory), and the first call picks
 * the best one the processor has, so one build runs anywhere.
 */
#pragma GCC diagnostic ignored "-Wpsabi"
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "vector.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
/* Adam as numpy rounds it: no fused multiply-adds there (GCC contracts a*b+c elsewhere, where FMA is allowed) */
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))

#define NAME(x) CAT(x, _base)
#define VW 4
#define MR 8
#include "window_impl.h"
#undef NAME
#undef VW
#undef MR

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_VARIANTS 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define NAME(x) CAT(x, _avx2)
#define VW 8
#define MR 8
#include "window_impl.h"
#undef NAME
#undef VW
#undef MR
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#define NAME(x) CAT(x, _avx512)
#define VW 16
#define MR 8
#include "window_impl.h"
#undef NAME
#undef VW
#undef MR
#pragma GCC pop_options
#endif

typedef struct {
    const char *name;
    double (*window_forward)(int, long, long, long, long, const float *, const int *, const int *, const float *,
                             float *, float *);
    void (*window_backward)(int, long, long, long, long, const float *, const int *, float, float *, float *,
                            float *);
    long (*adam)(long, const float *, const float *, const float *, const float *, float, float, float, float,
                 float, float, float, float, float *, float *, float *);
    double (*sum_squares)(long, const float *, float);
    void (*gemm)(long, long, long, const float *, long, long, const float *, long, float *, long, int);
} variant;

#define VARIANT(suffix) {#suffix, window_forward_##suffix, window_backward_##suffix, adam_##suffix, \
                         sum_squares_##suffix, gemm_##suffix}
static const variant BASE = VARIANT(base);
#ifdef HAVE_VARIANTS
static const variant AVX2 = VARIANT(avx2), AVX512 = VARIANT(avx512);
#endif
static const variant *chosen = NULL;

static const variant *pick(void) {
    if (chosen) return chosen;
    chosen = &BASE;
#ifdef HAVE_VARIANTS
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        chosen = &AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        chosen = &AVX2;
#endif
    return chosen;
}

/* The exported functions (ctypes). tinyrnn_select(force) picks a variant and returns the one in use:
 * 0 or 3 = the best this processor runs, 1 = baseline, 2 = AVX2 + FMA (if it runs); 1/2/3 as above. */
int tinyrnn_select(int force) {
    chosen = NULL;
    pick();  /* the best variant */
#ifdef HAVE_VARIANTS
    if (force == 2 && chosen == &AVX512) chosen = &AVX2;  /* every AVX-512 processor has AVX2 and FMA */
#endif
    if (force == 1) chosen = &BASE;
#ifdef HAVE_VARIANTS
    return chosen == &AVX512 ? 3 : chosen == &AVX2 ? 2 : 1;
#else
    return 1;
#endif
}

const char *tinyrnn_variant(void) { return pick()->name; }

/* floats of work one window needs (vector.h's arena_of; the same in every variant) */
long tinyrnn_window_size(int cell, long T, long B, long H, long V) { return arena_of(cell, T, B, H, V).size; }

double tinyrnn_window_forward(int cell, long T, long B, long H, long V, const float *P, const int *ids,
                              const int *targets, const float *state0, float *state_last, float *work) {
    return pick()->window_forward(cell, T, B, H, V, P, ids, targets, state0, state_last, work);
}

void tinyrnn_window_backward(int cell, long T, long B, long H, long V, const float *P, const int *ids, float g,
                             float *G, float *dstate0, float *work) {
    pick()->window_backward(cell, T, B, H, V, P, ids, g, G, dstate0, work);
}

long tinyrnn_adam(long n, const float *P, const float *G, const float *M, const float *Vs, float clip, float gscale,
                  float b1, float c1, float b2, float c2, float step, float eps, float *P_out, float *M_out,
                  float *V_out) {
    return pick()->adam(n, P, G, M, Vs, clip, gscale, b1, c1, b2, c2, step, eps, P_out, M_out, V_out);
}

double tinyrnn_sum_squares(long n, const float *x, float clip) { return pick()->sum_squares(n, x, clip); }

void tinyrnn_gemm(long M, long N, long K, const float *A, long sai, long sak, const float *B, long ldb, float *C,
                  long ldc, int accumulate) {
    pick()->gemm(M, N, K, A, sai, sak, B, ldb, C, ldc, accumulate);
}

/* A Python extension module only so that pip builds and tags a platform wheel; the functions above are called
 * through ctypes on this same file (tinyrnn_native.LIBRARY). */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_kernels",
                                    .m_doc = "tinyrnn's native kernels (called through ctypes)", .m_size = -1};
PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
