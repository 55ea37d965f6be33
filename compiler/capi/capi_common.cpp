#include "compiler/capi/capi_common.h"

#include <limits>

namespace kiln::build_capi {
namespace {
thread_local std::string g_last_error;
}

kiln_status report(const Status& s) {
  g_last_error = s.is_ok() ? "" : s.message();
  return static_cast<kiln_status>(s.code());
}

const char* last_error() { return g_last_error.c_str(); }

Status shape_from(const char* what, const int64_t* dims, int32_t rank, Shape* out) {
  if (rank < 0 || rank > KILN_MAX_RANK)
    return invalid_argument(std::string(what) + ": rank " + std::to_string(rank) + " is outside 0.." +
                            std::to_string(KILN_MAX_RANK));
  if (rank > 0 && !dims) return invalid_argument(std::string(what) + ": NULL dims");
  out->assign(dims, dims + rank);
  for (int64_t d : *out)
    if (d < 0) return invalid_argument(std::string(what) + ": negative dim in " + shape_str(*out));
  return Status::ok();
}

Status tensor_from(const char* what, int32_t dtype, const int64_t* dims, int32_t rank, const void* data,
                   size_t size_bytes, HostTensor* out) {
  const DType dt = static_cast<DType>(dtype);
  if (dtype <= 0 || !dtype_is_storable(dt))
    return invalid_argument(std::string(what) + ": dtype " + std::to_string(dtype) + " is not a kiln dtype");
  Shape shape;
  KILN_TRY(shape_from(what, dims, rank, &shape));
  // The element count, refusing overflow before anything is allocated.
  uint64_t n = dtype_size(dt);
  for (int64_t d : shape) {
    if (d != 0 && n > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(d))
      return invalid_argument(std::string(what) + ": shape " + shape_str(shape) + " is too large");
    n *= static_cast<uint64_t>(d);
  }
  if (n != size_bytes)
    return invalid_argument(std::string(what) + ": " + dtype_name(dt) + " " + shape_str(shape) + " needs " +
                            std::to_string(n) + " bytes, got " + std::to_string(size_bytes));
  if (size_bytes && !data) return invalid_argument(std::string(what) + ": NULL data");
  HostTensor t(dt, shape);
  if (size_bytes) std::copy_n(static_cast<const uint8_t*>(data), size_bytes, t.data());
  *out = std::move(t);
  return Status::ok();
}

Status collect_samples(kiln_build_sample_fn fn, void* user, const char* what, std::vector<CalibrationSample>* out) {
  out->clear();
  for (int32_t i = 0;; ++i) {
    kiln_build_tensors sample;
    const int32_t r = fn(user, i, &sample);
    if (r == 0) break;
    if (r != 1)
      return invalid_argument(std::string(what) + " failed at sample #" + std::to_string(i) +
                              (sample.error.empty() ? std::string(" (the callback reported an error)")
                                                    : ": " + sample.error));
    out->push_back(std::move(sample.tensors));
    if (i == std::numeric_limits<int32_t>::max() - 1) return invalid_argument(std::string(what) + ": too many samples");
  }
  if (out->empty()) return invalid_argument(std::string(what) + " gave no samples");
  return Status::ok();
}

Status resolve_options(const kiln_build_options* o, std::FILE* report, BuildOptions* out) {
  *out = o->opts;
  if (o->calib_fn) {
    auto samples = std::make_shared<std::vector<CalibrationSample>>();
    KILN_TRY(collect_samples(o->calib_fn, o->calib_user, "the calibration source", samples.get()));
    out->calib_samples = std::move(samples);
  }
  out->report = report;
  return Status::ok();
}

}  // namespace kiln::build_capi
