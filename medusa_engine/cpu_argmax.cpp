// Row-wise argmax of float32 rows for x86 CPUs with AVX2 (built with cpu_rows.cpp by cpu_linear.py).
//
// Greedy decoding takes the argmax of a few 49,152-wide logit rows every step; torch's CPU argmax scans
// them one element at a time (~0.1 ms a row on the project's CPU). Here: one vectorised pass for the
// maximum, one for its first index. Same answer as torch.argmax: the first index of the maximum, or of
// the first NaN where a row holds one.
#include <ATen/Functions.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <immintrin.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

namespace {

constexpr int64_t kLanes = 8;  // floats per AVX2 register

int64_t first_nan(const float* row, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    if (std::isnan(row[j])) return j;
  }
  return -1;
}

int64_t row_argmax(const float* row, int64_t n) {
  __m256 best = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 unordered = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const __m256 v = _mm256_loadu_ps(row + j);
    best = _mm256_max_ps(best, v);
    unordered = _mm256_or_ps(unordered, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  alignas(32) float lanes[kLanes];
  _mm256_store_ps(lanes, best);
  float top = lanes[0];
  for (int i = 1; i < kLanes; ++i) top = lanes[i] > top ? lanes[i] : top;
  bool nan = _mm256_movemask_ps(unordered) != 0;
  for (int64_t t = j; t < n; ++t) {
    nan = nan || std::isnan(row[t]);
    top = row[t] > top ? row[t] : top;
  }
  if (nan) return first_nan(row, n);
  const __m256 target = _mm256_set1_ps(top);
  for (j = 0; j + kLanes <= n; j += kLanes) {
    const int hits = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(row + j), target, _CMP_EQ_OQ));
    if (hits) return j + __builtin_ctz(hits);
  }
  for (; j < n; ++j) {
    if (row[j] == top) return j;
  }
  return 0;  // unreachable: `top` is one of the row's values
}

at::Tensor rows_argmax(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.is_contiguous() && x.device().is_cpu() &&
                  x.size(1) > 0,
              "rows_argmax: x must be a contiguous, non-empty 2-D float32 CPU tensor");
  const int64_t rows = x.size(0), n = x.size(1);
  at::Tensor out = at::empty({rows}, x.options().dtype(at::kLong));
  const float* xp = x.data_ptr<float>();
  int64_t* op = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) op[r] = row_argmax(xp + r * n, n);
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(medusa_lens, m) { m.def("rows_argmax(Tensor x) -> Tensor", &rows_argmax); }
