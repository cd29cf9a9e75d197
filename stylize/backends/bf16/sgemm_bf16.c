/* stylize: Caffe's float GEMMs on bfloat16 matrix instructions (oneDNN), when asked.
 *
 * pycaffe's _caffe.so calls scipy_cblas_sgemm, an undefined symbol that the
 * dynamic linker resolves when _caffe.so is loaded. This library defines the
 * same symbol; loaded with RTLD_GLOBAL before caffe is imported, it comes
 * first in the global scope, so every sgemm Caffe makes lands here
 * (stylize_bf16_interposed says whether it will). With bf16 off (the default)
 * each call goes on, unchanged, to the real OpenBLAS sgemm (dlsym on the
 * library stylize_bf16_init is given): results are bit-identical. With bf16
 * on, products of at least min_flops round A and B to dense bf16 copies and
 * run a oneDNN bf16 matmul with f32 accumulation and f32 output (AMX or
 * AVX512-BF16 kernels). The copies are needed, not only the rounding: given
 * f32 operands with leading dimensions wider than the matrix (Caffe's bands
 * of a feature map), oneDNN 3.2 falls back to its plain f32 GEMM even in
 * fpmath mode bf16. alpha and beta are applied when the result is written
 * into C, so BLAS's meaning holds (beta == 0: C is not read).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "oneapi/dnnl/dnnl.h"

enum { RowMajor = 101, ColMajor = 102, NoTrans = 111 };

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                         const float *, int, float, float *, int);
typedef int (*threads_fn)(void);

static sgemm_fn real_sgemm;
static threads_fn blas_threads;
/* Per thread: Caffe runs a net's GEMMs on the thread that calls forward/backward, so jobs of
 * either precision may run side by side in one process. */
static __thread int enabled;                 /* 1: large products in bf16 */
static __thread double min_flops = 1 << 24;  /* smaller products stay in OpenBLAS */
static long long n_calls, n_bf16;   /* proof of interposition, and of use */
static long long gemm_ns;           /* wall time inside sgemm (either path) */
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void scipy_cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int,
                       float, float *, int);

/* 0 on success; 1 if the real OpenBLAS cannot be opened (message in err). */
int stylize_bf16_init(const char *openblas_path, char *err, int err_len) {
  void *h = dlopen(openblas_path, RTLD_NOW | RTLD_LOCAL);
  if (!h) { snprintf(err, err_len, "%s", dlerror()); return 1; }
  real_sgemm = (sgemm_fn)dlsym(h, "scipy_cblas_sgemm");
  blas_threads = (threads_fn)dlsym(h, "scipy_openblas_get_num_threads");
  if (!real_sgemm) { snprintf(err, err_len, "%s: no scipy_cblas_sgemm", openblas_path); return 1; }
  return 0;
}

/* 1 when the global scope resolves scipy_cblas_sgemm to this library, i.e. when a library
 * loaded from now on (Caffe's) binds its calls here; 0 if the real OpenBLAS was loaded with
 * RTLD_GLOBAL first (importing scipy_openblas32 does that). */
int stylize_bf16_interposed(void) {
  return dlsym(RTLD_DEFAULT, "scipy_cblas_sgemm") == (void *)scipy_cblas_sgemm;
}

void stylize_bf16_set(int on, double min) { enabled = on; min_flops = min; }
int stylize_bf16_enabled(void) { return enabled; }
long long stylize_bf16_calls(void) { return n_calls; }
long long stylize_bf16_bf16_calls(void) { return n_bf16; }
double stylize_bf16_seconds(void) { return gemm_ns * 1e-9; }
void stylize_bf16_reset_counts(void) { n_calls = n_bf16 = gemm_ns = 0; }

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* -- scratch: dense bf16 copies of A and B, and an f32 result when C is not dense ------- */
static void *scratch[3];
static size_t scratch_bytes[3];

static void *grow(int i, size_t bytes) {
  if (bytes > scratch_bytes[i]) {
    free(scratch[i]);
    scratch[i] = aligned_alloc(64, (bytes + 63) / 64 * 64);
    scratch_bytes[i] = scratch[i] ? bytes : 0;
  }
  return scratch[i];
}

/* Round to nearest even; NaN stays NaN. Written so that GCC vectorizes the inner loop, once per
 * ISA: the library must load (and forward fp32 calls) on any x86-64. */
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
CLONES static void to_bf16(const float *x, int rows, int cols, int ld, uint16_t *out, int threads) {
#pragma omp parallel for num_threads(threads) if ((long)rows * cols > (1L << 16)) schedule(static)
  for (int r = 0; r < rows; ++r) {
    const uint32_t *in = (const uint32_t *)(x + (long)r * ld);
    uint16_t *o = out + (long)r * cols;
    for (int c = 0; c < cols; ++c) {
      uint32_t u = in[c];
      uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
      o[c] = (uint16_t)((u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x40u : rounded);
    }
  }
}

/* C = alpha T + beta C, row by row (T dense m x n). */
CLONES static void write_back(const float *t, int m, int n, float alpha, float beta, float *c, int ldc,
                       int threads) {
#pragma omp parallel for num_threads(threads) if ((long)m * n > (1L << 16)) schedule(static)
  for (int r = 0; r < m; ++r) {
    const float *in = t + (long)r * n;
    float *o = c + (long)r * ldc;
    if (beta == 0.0f)
      for (int j = 0; j < n; ++j) o[j] = alpha * in[j];
    else
      for (int j = 0; j < n; ++j) o[j] = alpha * in[j] + beta * o[j];
  }
}

/* -- oneDNN matmul primitives, cached per shape, transposes and threads ------------------ */
typedef struct {
  int m, n, k, ta, tb, threads;
  dnnl_primitive_t prim;
  dnnl_memory_t a, b, c;
} entry;

#define CACHE 128
static entry cache[CACHE];
static int cache_used, cache_next;

/* op(X) is rows x cols, X a dense row-major copy of what BLAS was given. */
static dnnl_memory_desc_t dense(int rows, int cols, int trans, dnnl_data_type_t type) {
  dnnl_dims_t dims = {rows, cols};
  dnnl_dims_t strides = {trans ? 1 : cols, trans ? rows : 1};
  dnnl_memory_desc_t md;
  dnnl_memory_desc_create_with_strides(&md, 2, dims, type, strides);
  return md;
}

static void drop(entry *e) {
  if (e->prim) dnnl_primitive_destroy(e->prim);
  if (e->a) dnnl_memory_destroy(e->a);
  if (e->b) dnnl_memory_destroy(e->b);
  if (e->c) dnnl_memory_destroy(e->c);
  memset(e, 0, sizeof *e);
}

/* The cached primitive for this product, made on first use (e->prim NULL: oneDNN declined). */
static entry *lookup(int m, int n, int k, int ta, int tb, int threads) {
  for (int i = 0; i < cache_used; ++i) {
    entry *e = &cache[i];
    if (e->m == m && e->n == n && e->k == k && e->ta == ta && e->tb == tb && e->threads == threads)
      return e;
  }
  if (!engine) {
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success) return NULL;
    if (dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) return NULL;
  }
  entry *e = &cache[cache_used < CACHE ? cache_used++ : (cache_next++ % CACHE)];
  drop(e);
  e->m = m; e->n = n; e->k = k; e->ta = ta; e->tb = tb; e->threads = threads;
  dnnl_memory_desc_t a = dense(m, k, ta, dnnl_bf16), b = dense(k, n, tb, dnnl_bf16),
                     c = dense(m, n, 0, dnnl_f32);
  dnnl_primitive_desc_t pd = NULL;
  omp_set_num_threads(threads);  /* implementations size their work for the threads at creation */
  dnnl_status_t st = dnnl_matmul_primitive_desc_create(&pd, engine, a, b, NULL, c, NULL);
  if (st == dnnl_success) st = dnnl_primitive_create(&e->prim, pd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (st == dnnl_success) {
    dnnl_memory_create(&e->a, a, engine, DNNL_MEMORY_NONE);
    dnnl_memory_create(&e->b, b, engine, DNNL_MEMORY_NONE);
    dnnl_memory_create(&e->c, c, engine, DNNL_MEMORY_NONE);
  } else if (e->prim) {
    dnnl_primitive_destroy(e->prim);
    e->prim = NULL;
  }
  dnnl_memory_desc_destroy(a);
  dnnl_memory_desc_destroy(b);
  dnnl_memory_desc_destroy(c);
  return e;
}

/* Row-major C = alpha op(A) op(B) + beta C in bf16 (f32 accumulation); 0 if oneDNN declined. */
static int bf16_gemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc) {
  int threads = blas_threads ? blas_threads() : omp_get_max_threads();
  pthread_mutex_lock(&lock);
  entry *e = lookup(m, n, k, ta, tb, threads);
  int done = 0;
  uint16_t *a16 = grow(0, (size_t)m * k * 2), *b16 = grow(1, (size_t)k * n * 2);
  int direct = ldc == n && alpha == 1.0f && beta == 0.0f;
  float *t = direct ? c : grow(2, (size_t)m * n * 4);
  if (e && e->prim && a16 && b16 && t) {
    omp_set_num_threads(threads);
    to_bf16(a, ta ? k : m, ta ? m : k, lda, a16, threads);
    to_bf16(b, tb ? n : k, tb ? k : n, ldb, b16, threads);
    dnnl_memory_set_data_handle(e->a, a16);
    dnnl_memory_set_data_handle(e->b, b16);
    dnnl_memory_set_data_handle(e->c, t);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    done = dnnl_primitive_execute(e->prim, stream, 3, args) == dnnl_success &&
           dnnl_stream_wait(stream) == dnnl_success;
    if (done && !direct) write_back(t, m, n, alpha, beta, c, ldc, threads);
  }
  pthread_mutex_unlock(&lock);
  return done;
}

void scipy_cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a,
                       int lda, const float *b, int ldb, float beta, float *c, int ldc) {
  long long start = now_ns();
  __atomic_add_fetch(&n_calls, 1, __ATOMIC_RELAXED);
  int ok = 0;
  if (enabled && m > 0 && n > 0 && k > 0 && 2.0 * m * n * k >= min_flops) {
    int t_a = ta != NoTrans, t_b = tb != NoTrans;
    /* Column-major C = op(A) op(B) is row-major C^T = op(B)^T op(A)^T. */
    ok = order == RowMajor ? bf16_gemm(t_a, t_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                           : bf16_gemm(t_b, t_a, n, m, k, alpha, b, ldb, a, lda, beta, c, ldc);
    if (ok) __atomic_add_fetch(&n_bf16, 1, __ATOMIC_RELAXED);
  }
  if (!ok) real_sgemm(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  __atomic_add_fetch(&gemm_ns, now_ns() - start, __ATOMIC_RELAXED);
}
