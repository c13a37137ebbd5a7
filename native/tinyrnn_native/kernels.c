/* tinyrnn's native kernels: one training window of the tanh RNN (forward and backward, every time step inside
 * one call) and clipping + Adam over one flat parameter buffer, in float32 with SIMD.
 *
 * These are the native twin of the browser's WebAssembly kernels (core/tinyrnn/kernels/simd.c); the numpy code
 * in core/tinyrnn/ops.py and optim.py stays the reference both are tested against (tests/test_native_kernels.py).
 * core/tinyrnn/native_kernels.py calls them through ctypes and makes the window one autograd primitive.
 *
 * The file is compiled once per instruction set (step_impl.h, included three times on x86-64: AVX-512, AVX2 + FMA,
 * and the baseline), and the first call picks the best one the processor has, so one build runs anywhere.
 * The kernels trust their arguments: native_kernels.py checks shapes, dtypes and ids before every call.
 */
#pragma GCC diagnostic ignored "-Wpsabi"
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));

#define INLINE static inline __attribute__((always_inline))
INLINE vf load(const float *p) { vf v; memcpy(&v, p, sizeof v); return v; }
INLINE void store(float *p, vf v) { memcpy(p, &v, sizeof v); }
INLINE vf vselect(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
/* logits rows are padded to whole vectors: row stride of a (., V) logits buffer */
INLINE long padded(long V) { return (V + 15) / 16 * 16; }

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

#define NAME(x) CAT(x, _base)
#define MR 4
#include "step_impl.h"
#undef NAME
#undef MR

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAVE_VARIANTS 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define NAME(x) CAT(x, _avx2)
#define MR 4
#include "step_impl.h"
#undef NAME
#undef MR
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#define NAME(x) CAT(x, _avx512)
#define MR 8
#include "step_impl.h"
#undef NAME
#undef MR
#pragma GCC pop_options
#endif

typedef struct {
    const char *name;
    double (*window_forward)(long, long, long, long, const float *, const int32_t *, const int32_t *, float *,
                             float *, float *);
    void (*window_backward)(long, long, long, long, const float *, const int32_t *, const float *, const float *,
                            float, float *, float *, float *, float *);
    long (*adam)(long, const float *, const float *, const float *, const float *, float, float, float, float,
                 float, float, float, float *, float *, float *);
    double (*sum_squares)(long, const float *);
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

double tinyrnn_window_forward(long T, long B, long H, long V, const float *P, const int32_t *ids,
                              const int32_t *targets, float *hs, float *logits, float *work) {
    return pick()->window_forward(T, B, H, V, P, ids, targets, hs, logits, work);
}

void tinyrnn_window_backward(long T, long B, long H, long V, const float *P, const int32_t *ids, const float *hs,
                             const float *dlogits, float g, float *G, float *dh0, float *das, float *work) {
    pick()->window_backward(T, B, H, V, P, ids, hs, dlogits, g, G, dh0, das, work);
}

long tinyrnn_adam(long n, const float *P, const float *G, const float *M, const float *Vs, float gscale, float b1,
                  float c1, float b2, float c2, float step, float eps, float *P_out, float *M_out, float *V_out) {
    return pick()->adam(n, P, G, M, Vs, gscale, b1, c1, b2, c2, step, eps, P_out, M_out, V_out);
}

double tinyrnn_sum_squares(long n, const float *x) { return pick()->sum_squares(n, x); }

void tinyrnn_gemm(long M, long N, long K, const float *A, long sai, long sak, const float *B, long ldb, float *C,
                  long ldc, int accumulate) {
    pick()->gemm(M, N, K, A, sai, sak, B, ldb, C, ldc, accumulate);
}

/* A Python extension module only so that pip builds and tags a platform wheel; the functions above are called
 * through ctypes on this same file (tinyrnn_native.LIBRARY). */
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, .m_name = "_kernels",
                                    .m_doc = "tinyrnn's native kernels (called through ctypes)", .m_size = -1};
PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
