// Few-row float32 matmuls for decoding on x86 CPUs with AVX2 + FMA (built by cpu_linear.py).
//
// out (M, N) = x (M, K) @ W^T, with W (N, K) stored as panels (N/16, K, 16): panel b holds output
// columns 16b..16b+15, one 64-byte line per k, so each panel streams from memory once for all M rows
// while the rows' 6-row chunks stay in L1. Every output row is summed in the same order (k ascending,
// one FMA chain per column) whatever M is: a row's result is bit-for-bit the same alone or in a tree.
#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <immintrin.h>
#include <torch/library.h>

namespace {

constexpr int64_t kCols = 16;  // output columns per panel: two 8-float registers
constexpr int kMaxRows = 6;    // rows per chunk: 12 accumulators + 2 weights + 1 broadcast <= 16 registers
constexpr int64_t kPrefetchLines = 16;  // how far ahead the software prefetch reads: 16 weight lines, 1 KB

template <int R, bool Prefetch>
inline void panel_rows(const float* x, int64_t K, const float* panel, float* out, int64_t N) {
  __m256 acc[R][2];
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < K; ++k) {
    // Several rows per weight line leave the hardware prefetcher behind; one row does not.
    if (Prefetch) _mm_prefetch(reinterpret_cast<const char*>(panel + (k + kPrefetchLines) * kCols), _MM_HINT_T0);
    const __m256 w0 = _mm256_loadu_ps(panel + k * kCols);
    const __m256 w1 = _mm256_loadu_ps(panel + k * kCols + 8);
    for (int r = 0; r < R; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * K + k);
      acc[r][0] = _mm256_fmadd_ps(xb, w0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(xb, w1, acc[r][1]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(out + r * N, acc[r][0]);
    _mm256_storeu_ps(out + r * N + 8, acc[r][1]);
  }
}

void panel_chunk(const float* x, int64_t rows, int64_t K, const float* panel, float* out, int64_t N) {
  switch (rows) {
    case 1: panel_rows<1, false>(x, K, panel, out, N); break;
    case 2: panel_rows<2, false>(x, K, panel, out, N); break;
    case 3: panel_rows<3, true>(x, K, panel, out, N); break;
    case 4: panel_rows<4, true>(x, K, panel, out, N); break;
    case 5: panel_rows<5, true>(x, K, panel, out, N); break;
    case 6: panel_rows<6, true>(x, K, panel, out, N); break;
    default: break;
  }
}

// M rows in ceil(M/6) chunks of near-equal size (9 rows: 5 + 4, not 6 + 3: more FMAs in flight).
void panel_all_rows(const float* x, int64_t M, int64_t K, const float* panel, float* out, int64_t N) {
  const int64_t chunks = (M + kMaxRows - 1) / kMaxRows;
  int64_t m = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t rows = M / chunks + (c < M % chunks ? 1 : 0);
    panel_chunk(x + m * K, rows, K, panel, out + m * N, N);
    m += rows;
  }
}

at::Tensor rows_matmul(const at::Tensor& x, const at::Tensor& panels) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous() && x.device().is_cpu(),
              "rows_matmul: x must be a contiguous 2-D float32 CPU tensor");
  TORCH_CHECK(panels.dim() == 3 && panels.size(2) == kCols && panels.scalar_type() == at::kFloat &&
              panels.is_contiguous() && panels.device().is_cpu(),
              "rows_matmul: panels must be a contiguous float32 CPU tensor of shape (N/16, K, 16)");
  TORCH_CHECK(panels.size(1) == x.size(1), "rows_matmul: x has ", x.size(1), " columns, the weight ",
              panels.size(1));
  const int64_t M = x.size(0), K = x.size(1), blocks = panels.size(0), N = blocks * kCols;
  at::Tensor out = at::empty({M, N}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* pp = panels.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, blocks, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) panel_all_rows(xp, M, K, pp + b * K * kCols, op + b * kCols, N);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY(medusa_lens, m) { m.def("rows_matmul(Tensor x, Tensor panels) -> Tensor", &rows_matmul); }
