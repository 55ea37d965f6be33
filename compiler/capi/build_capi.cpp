// kiln_build_* (include/kiln/kiln_build.h): options, tensor sets and building. Every entry
// point catches C++ exceptions, so nothing escapes into C callers (or Python).
#include <cmath>

#include "compiler/capi/capi_common.h"
#include "compiler/capi/log_stream.h"
#include "compiler/quant/calibrator.h"
#include "compiler/quant/precision.h"
#include "runtime/core/c_enum.h"
#include "runtime/device/devices.h"
#include "runtime/plan/plan_format.h"
#include "runtime/version.h"

using kiln::build_capi::guarded;

struct kiln_build_result {
  std::vector<uint8_t> bytes;
  std::string summary;
};

namespace {

const char* const kPrecisionNames[] = {"fp32", "fp16", "int8", "fp8", "fp8-e5m2", "best"};

// `p`: the caller's kiln_precision as an int (kiln::c_enum_value).
kiln::Status precision_arg(const char* fn, int32_t p, bool allow_best, std::string* out) {
  if (p < KILN_PRECISION_FP32 || p > KILN_PRECISION_BEST || (p == KILN_PRECISION_BEST && !allow_best))
    return kiln::invalid_argument(std::string(fn) + ": precision " + std::to_string(p) +
                                  " is not a kiln_precision" + (allow_best ? "" : " for one layer (best is not)"));
  *out = kPrecisionNames[p];
  return kiln::Status::ok();
}

kiln::Status need(const char* fn, const void* a) {
  return a ? kiln::Status::ok() : kiln::invalid_argument(std::string(fn) + ": NULL argument");
}

std::string summarize(const kiln::Plan& plan) {
  size_t on_cl = 0;
  for (const kiln::PlanNode& n : plan.nodes) on_cl += n.backend == kiln::Backend::kOpenCL;
  std::string dynamic;
  for (const kiln::DynVar& v : plan.dyn_vars)
    dynamic += (dynamic.empty() ? ", dynamic " : ", ") + v.name + " in [" + std::to_string(v.min) + ", " +
               std::to_string(v.max) + "]";
  return std::to_string(plan.nodes.size()) + " nodes (" + std::to_string(on_cl) + " opencl, " +
         std::to_string(plan.nodes.size() - on_cl) + " cpu), " + std::to_string(plan.weights.size()) +
         " weight bytes, target " + plan.target.kind + " '" + plan.target.name + "'" + dynamic;
}

template <typename BuildFn>
kiln_status build_with(const char* fn, const kiln_build_options* o, kiln_build_result** out, BuildFn&& build) {
  return guarded(fn, [&] {
    KILN_TRY(need(fn, out));
    *out = nullptr;
    KILN_TRY(need(fn, o));
    kiln::LogStream log(o->log_fn, o->log_user);
    kiln::BuildOptions opts;
    KILN_TRY(kiln::build_capi::resolve_options(o, log.file(), &opts));
    kiln::Plan plan;
    KILN_TRY(build(opts, &plan));
    auto r = std::make_unique<kiln_build_result>();
    r->bytes = kiln::serialize_plan(plan);
    r->summary = summarize(plan);
    *out = r.release();
    return kiln::Status::ok();
  });
}

// The setters that take fp32 or fp16 only: *fp16 set, or an error naming what `v` is (the
// precision's raw value, kiln::c_enum_value: a caller's out-of-range enum is not loaded as one).
kiln::Status fp32_or_fp16(const char* fn, const char* what, int32_t v, bool* fp16) {
  if (v != KILN_PRECISION_FP32 && v != KILN_PRECISION_FP16)
    return kiln::invalid_argument(std::string(fn) + ": the " + what + " must be fp32 or fp16, got " +
                                  (v >= KILN_PRECISION_FP32 && v <= KILN_PRECISION_BEST ? kPrecisionNames[v]
                                                                                         : std::to_string(v)));
  *fp16 = v == KILN_PRECISION_FP16;
  return kiln::Status::ok();
}

}  // namespace

extern "C" {

const char* kiln_build_last_error(void) { return kiln::build_capi::last_error(); }
const char* kiln_build_version(void) { return KILN_VERSION_STRING; }

const char* kiln_build_precision_name(kiln_precision precision) {
  const int32_t p = kiln::c_enum_value(precision);
  return p >= KILN_PRECISION_FP32 && p <= KILN_PRECISION_BEST ? kPrecisionNames[p] : nullptr;
}

kiln_status kiln_build_parse_precision(const char* name, kiln_precision* out) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, name));
    KILN_TRY(need(__func__, out));
    if (std::string(name) == "best") {
      *out = KILN_PRECISION_BEST;
      return kiln::Status::ok();
    }
    kiln::Precision p;
    KILN_TRY(kiln::parse_precision(name, &p));  // its messages (an FNUZ name is unsupported, say)
    for (int i = 0; i < KILN_PRECISION_BEST; ++i)
      if (std::string(kiln::precision_name(p)) == kPrecisionNames[i]) {
        *out = static_cast<kiln_precision>(i);
        return kiln::Status::ok();
      }
    return kiln::internal_error(std::string("precision '") + name + "' has no kiln_precision");
  });
}

// ---- tensor sets ----
kiln_status kiln_build_tensors_create(kiln_build_tensors** out) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, out));
    *out = new kiln_build_tensors();
    return kiln::Status::ok();
  });
}
void kiln_build_tensors_release(kiln_build_tensors* set) { delete set; }

kiln_status kiln_build_tensors_add(kiln_build_tensors* set, const char* name, int32_t dtype, const int64_t* dims,
                                   int32_t rank, const void* data, size_t size_bytes) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, set));
    KILN_TRY(need(__func__, name));
    kiln::HostTensor t;
    KILN_TRY(kiln::build_capi::tensor_from((std::string("array '") + name + "'").c_str(), dtype, dims, rank, data,
                                     size_bytes, &t));
    set->tensors[name] = std::move(t);
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_tensors_set_error(kiln_build_tensors* set, const char* message) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, set));
    set->error = message ? message : "";
    return kiln::Status::ok();
  });
}

int32_t kiln_build_tensors_count(const kiln_build_tensors* set) {
  return set ? static_cast<int32_t>(set->tensors.size()) : 0;
}

kiln_status kiln_build_tensors_get(const kiln_build_tensors* set, int32_t index, kiln_tensor_info* info,
                                   const void** data) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, set));
    KILN_TRY(need(__func__, info));
    if (index < 0 || index >= static_cast<int32_t>(set->tensors.size()))
      return kiln::invalid_argument("array index " + std::to_string(index) + " out of range");
    auto it = std::next(set->tensors.begin(), index);
    const kiln::HostTensor& t = it->second;
    if (t.shape().size() > KILN_MAX_RANK) return kiln::unsupported("tensor rank above KILN_MAX_RANK");
    info->name = it->first.c_str();
    info->dtype = static_cast<int32_t>(t.dtype());
    info->rank = static_cast<int32_t>(t.shape().size());
    for (size_t d = 0; d < t.shape().size(); ++d) info->dims[d] = t.shape()[d];
    info->size_bytes = t.size_bytes();
    if (data) *data = t.data();
    return kiln::Status::ok();
  });
}

// ---- options ----
kiln_status kiln_build_options_create(kiln_build_options** out) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, out));
    *out = new kiln_build_options();
    return kiln::Status::ok();
  });
}
void kiln_build_options_release(kiln_build_options* opts) { delete opts; }

kiln_status kiln_build_options_set_device(kiln_build_options* o, const char* device) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    const std::string d = device && *device ? device : "auto";
    kiln::ResolvedDevice resolved;
    KILN_TRY(kiln::resolve_build_device(d, &resolved));  // refused here, not at build time
    o->opts.device = d;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_precision(kiln_build_options* o, kiln_precision p) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    return precision_arg(__func__, kiln::c_enum_value(p), true, &o->opts.precision);
  });
}

kiln_status kiln_build_options_set_layer_precision(kiln_build_options* o, const char* node, kiln_precision p) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    KILN_TRY(need(__func__, node));
    std::string name;
    KILN_TRY(precision_arg(__func__, kiln::c_enum_value(p), false, &name));
    if (!*node) return kiln::invalid_argument(std::string(__func__) + ": empty node name");
    o->opts.layer_precision[node] = name;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_fallback_precision(kiln_build_options* o, kiln_precision p) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    bool fp16 = false;
    KILN_TRY(fp32_or_fp16(__func__, "fallback precision", kiln::c_enum_value(p), &fp16));
    o->opts.fallback_precision = fp16 ? kiln::FallbackPrecision::kFp16 : kiln::FallbackPrecision::kFp32;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_io_precision(kiln_build_options* o, kiln_precision p) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    bool fp16 = false;
    KILN_TRY(fp32_or_fp16(__func__, "input/output precision", kiln::c_enum_value(p), &fp16));
    o->opts.io_dtype = fp16 ? kiln::DType::kFloat16 : kiln::DType::kFloat32;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_shape(kiln_build_options* o, const char* input, const int64_t* dims, int32_t rank) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    KILN_TRY(need(__func__, input));
    kiln::Shape s;
    KILN_TRY(kiln::build_capi::shape_from((std::string("shape of '") + input + "'").c_str(), dims, rank, &s));
    o->opts.shapes[input] = s;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_shape_range(kiln_build_options* o, const char* input, const int64_t* min_dims,
                                               const int64_t* max_dims, int32_t rank) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    KILN_TRY(need(__func__, input));
    kiln::Shape lo, hi;
    KILN_TRY(kiln::build_capi::shape_from((std::string("min shape of '") + input + "'").c_str(), min_dims, rank, &lo));
    KILN_TRY(kiln::build_capi::shape_from((std::string("max shape of '") + input + "'").c_str(), max_dims, rank, &hi));
    // min <= (shape) <= max is checked by the build against the model, with the other ranges.
    o->opts.min_shapes[input] = lo;
    o->opts.max_shapes[input] = hi;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_freeze_input(kiln_build_options* o, const char* input, int32_t dtype,
                                            const int64_t* dims, int32_t rank, const void* data, size_t size_bytes) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    KILN_TRY(need(__func__, input));
    kiln::HostTensor t;
    KILN_TRY(kiln::build_capi::tensor_from((std::string("frozen input '") + input + "'").c_str(), dtype, dims, rank, data,
                                     size_bytes, &t));
    o->opts.frozen_inputs[input] = std::move(t);
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_fusion(kiln_build_options* o, int32_t enabled) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.fuse = enabled != 0;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_partition(kiln_build_options* o, kiln_partition_policy partition) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    const int32_t policy = kiln::c_enum_value(partition);
    if (policy != KILN_PARTITION_DEVICE && policy != KILN_PARTITION_COST)
      return kiln::invalid_argument(std::string(__func__) + ": not a kiln_partition_policy");
    o->opts.partition.policy =
        policy == KILN_PARTITION_COST ? kiln::PartitionPolicy::kCostModel : kiln::PartitionPolicy::kDeviceFirst;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_add_cpu_node(kiln_build_options* o, const char* node) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    KILN_TRY(need(__func__, node));
    if (!*node) return kiln::invalid_argument(std::string(__func__) + ": empty node name");
    o->opts.partition.cpu_nodes.insert(node);
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_transfer_gbps(kiln_build_options* o, double gbps) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    if (!(gbps > 0) || !std::isfinite(gbps)) return kiln::invalid_argument("transfer bandwidth must be a positive number of GB/s");
    o->opts.partition.transfer_gbps = gbps;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_accuracy_budget(kiln_build_options* o, double budget) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    if (!(budget > 0) || !std::isfinite(budget))
      return kiln::invalid_argument("the accuracy budget needs a positive number (a relative L2 error such as 0.02), got " +
                                    std::to_string(budget));
    o->opts.accuracy_budget = budget;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_smooth_quant(kiln_build_options* o, double alpha) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    if (std::isnan(alpha) || alpha > 1)
      return kiln::invalid_argument("smooth-quant needs an alpha in [0, 1] (negative: off), got " + std::to_string(alpha));
    o->opts.smooth_quant_alpha = alpha < 0 ? -1 : alpha;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_bias_correction(kiln_build_options* o, int32_t enabled) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.bias_correction = enabled != 0;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_accuracy_check(kiln_build_options* o, int32_t enabled) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.accuracy_check = enabled != 0;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_calibrator(kiln_build_options* o, kiln_calibrator calibrator, double percentile) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    std::string text;
    switch (kiln::c_enum_value(calibrator)) {
      case KILN_CALIBRATOR_DEFAULT: text = ""; break;
      case KILN_CALIBRATOR_ENTROPY: text = "entropy"; break;
      case KILN_CALIBRATOR_MINMAX: text = "minmax"; break;
      case KILN_CALIBRATOR_MSE: text = "mse"; break;
      case KILN_CALIBRATOR_PERCENTILE: {
        if (percentile == 0) {
          text = "percentile";
          break;
        }
        char buf[64];
        std::snprintf(buf, sizeof buf, "percentile=%.17g", percentile);
        text = buf;
        break;
      }
      default: return kiln::invalid_argument(std::string(__func__) + ": not a kiln_calibrator");
    }
    if (!text.empty()) {
      kiln::CalibratorSpec spec;
      KILN_TRY(kiln::parse_calibrator(text, &spec));
    }
    o->opts.calibrator = text;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_calib_dir(kiln_build_options* o, const char* dir) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.calib_dir = dir ? dir : "";
    o->calib_fn = nullptr;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_calib_source(kiln_build_options* o, kiln_build_sample_fn fn, void* user) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->calib_fn = fn;
    o->calib_user = user;
    if (fn) o->opts.calib_dir.clear();
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_calib_cache(kiln_build_options* o, const char* path) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.calib_cache = path ? path : "";
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_tune(kiln_build_options* o, int32_t enabled, const char* cache_path) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    if (!enabled && cache_path && *cache_path) return kiln::invalid_argument("a tuning cache needs tuning turned on");
    o->opts.tune = enabled != 0;
    o->opts.tuning_cache = cache_path ? cache_path : "";
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_allow_tf32(kiln_build_options* o, int32_t enabled) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.allow_tf32 = enabled != 0;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_layout(kiln_build_options* o, const char* layout) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    const std::string l = layout ? layout : "";
    if (l == "auto") o->opts.layout = kiln::ActivationLayout::kAuto;
    else if (l == "nchw") o->opts.layout = kiln::ActivationLayout::kChannelsFirst;
    else if (l == "nhwc") o->opts.layout = kiln::ActivationLayout::kChannelsLast;
    else return kiln::invalid_argument("layout '" + l + "' is not one of auto, nchw, nhwc");
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_max_memory(kiln_build_options* o, uint64_t bytes) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.max_memory = bytes;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_allow_over_memory(kiln_build_options* o, int32_t enabled) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->opts.allow_over_memory = enabled != 0;
    return kiln::Status::ok();
  });
}

kiln_status kiln_build_options_set_log(kiln_build_options* o, kiln_build_log_fn fn, void* user) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, o));
    o->log_fn = fn;
    o->log_user = user;
    return kiln::Status::ok();
  });
}

// ---- building ----
kiln_status kiln_build_from_file(const char* model_path, const kiln_build_options* opts, kiln_build_result** out) {
  return build_with(__func__, opts, out, [&](const kiln::BuildOptions& o, kiln::Plan* plan) {
    KILN_TRY(need("kiln_build_from_file", model_path));
    return kiln::build_plan_from_file(model_path, o, plan);
  });
}

kiln_status kiln_build_from_memory(const void* model, size_t size, const char* base_dir, const kiln_build_options* opts,
                                   kiln_build_result** out) {
  return build_with(__func__, opts, out, [&](const kiln::BuildOptions& o, kiln::Plan* plan) {
    if (!model && size) return kiln::invalid_argument("kiln_build_from_memory: NULL model");
    if (size == 0) return kiln::invalid_model("the model is empty (0 bytes)");
    const std::string bytes(static_cast<const char*>(model), size);
    return kiln::build_plan_from_bytes(bytes, base_dir ? base_dir : ".", o, plan);
  });
}

void kiln_build_result_release(kiln_build_result* result) { delete result; }

const void* kiln_build_result_data(const kiln_build_result* r, size_t* size) {
  if (size) *size = r ? r->bytes.size() : 0;
  return r ? r->bytes.data() : nullptr;
}

kiln_status kiln_build_result_write(const kiln_build_result* r, const char* path) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, r));
    KILN_TRY(need(__func__, path));
    return kiln::write_plan_bytes(r->bytes, path);
  });
}

const char* kiln_build_result_summary(const kiln_build_result* r) { return r ? r->summary.c_str() : ""; }

}  // extern "C"
