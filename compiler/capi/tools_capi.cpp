// kiln_build_compare and kiln_build_sweep_*: kiln compare and kiln sweep as data.
#include "compiler/capi/capi_common.h"
#include "compiler/capi/log_stream.h"
#include "runtime/plan/plan_format.h"

using kiln::build_capi::guarded;

struct kiln_build_comparison {
  kiln::Comparison c;
  kiln_build_tensors got, want;
};

struct kiln_build_sweep {
  kiln::SweepResult r;
};

namespace {

kiln::Status need(const char* fn, const void* a) {
  return a ? kiln::Status::ok() : kiln::invalid_argument(std::string(fn) + ": NULL argument");
}

int32_t precision_code(const std::string& name) {
  for (int i = 0; i <= KILN_PRECISION_BEST; ++i)
    if (name == kiln_build_precision_name(static_cast<kiln_precision>(i))) return i;
  return -1;
}

kiln_status sweep(const char* fn, const char* model, const kiln_build_options* o, const int32_t* precisions,
                  int32_t num_precisions, kiln_build_sample_fn eval_fn, void* eval_user, const char* eval_dir,
                  const int64_t* labels, size_t num_labels, double seconds, kiln_build_sweep** out) {
  return guarded(fn, [&] {
    KILN_TRY(need(fn, out));
    *out = nullptr;
    KILN_TRY(need(fn, model));
    KILN_TRY(need(fn, o));
    if (num_precisions < 0 || (num_precisions > 0 && !precisions))
      return kiln::invalid_argument(std::string(fn) + ": bad precision list");
    if (num_labels && !labels) return kiln::invalid_argument(std::string(fn) + ": NULL labels");
    kiln::SweepOptions so;
    if (num_precisions > 0) {
      so.precisions.clear();
      for (int32_t i = 0; i < num_precisions; ++i) {
        const char* name = kiln_build_precision_name(static_cast<kiln_precision>(precisions[i]));
        if (!name || precisions[i] == KILN_PRECISION_BEST)
          return kiln::invalid_argument(std::string(fn) + ": precision " + std::to_string(precisions[i]) +
                                        " cannot be swept (fp32, fp16, int8, fp8, fp8-e5m2)");
        so.precisions.push_back(name);
      }
    }
    std::vector<kiln::CalibrationSample> eval;
    if (eval_fn) {
      KILN_TRY(kiln::build_capi::collect_samples(eval_fn, eval_user, "the evaluation source", &eval));
      so.eval = &eval;
    }
    if (eval_dir) so.eval_dir = eval_dir;
    if (num_labels) {
      so.labels = kiln::HostTensor(kiln::DType::kInt64, {static_cast<int64_t>(num_labels)});
      std::copy_n(labels, num_labels, so.labels.as<int64_t>());
    }
    so.seconds = seconds;
    kiln::LogStream log(o->log_fn, o->log_user);
    if (std::FILE* f = log.file())
      so.on_row = [f](const kiln::SweepRow& r) {
        if (!r.available) std::fprintf(f, "sweep: %s not available: %s\n", r.precision.c_str(), r.reason.c_str());
        else
          std::fprintf(f, "sweep: %s %llu bytes, %.4f ms, %.2f/s, max rel L2 %.4g, min cosine %.6f\n",
                       r.precision.c_str(), static_cast<unsigned long long>(r.plan_bytes), r.latency_ms, r.per_second,
                       r.max_rel_l2, r.min_cosine);
      };
    kiln::BuildOptions base;
    KILN_TRY(kiln::build_capi::resolve_options(o, log.file(), &base));
    auto s = std::make_unique<kiln_build_sweep>();
    KILN_TRY(kiln::run_sweep(model, base, so, &s->r));
    *out = s.release();
    return kiln::Status::ok();
  });
}

}  // namespace

extern "C" {

kiln_status kiln_build_compare(const void* plan, size_t plan_size, const char* reference_model,
                               const kiln_build_tensors* inputs, const char* device, int32_t per_layer,
                               kiln_build_comparison** out) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, out));
    *out = nullptr;
    KILN_TRY(need(__func__, plan));
    KILN_TRY(need(__func__, reference_model));
    auto p = std::make_shared<kiln::Plan>();
    KILN_TRY(kiln::parse_plan(static_cast<const uint8_t*>(plan), plan_size, p.get()));
    auto c = std::make_unique<kiln_build_comparison>();
    static const std::map<std::string, kiln::HostTensor> kNone;
    KILN_TRY(kiln::compare_plan(p, reference_model, inputs ? inputs->tensors : kNone,
                                device && *device ? device : "auto", per_layer != 0, &c->c));
    c->got.tensors = std::move(c->c.plan_values);
    c->want.tensors = std::move(c->c.reference_values);
    *out = c.release();
    return kiln::Status::ok();
  });
}

void kiln_build_comparison_release(kiln_build_comparison* c) { delete c; }

int32_t kiln_build_comparison_num_rows(const kiln_build_comparison* c) {
  return c ? static_cast<int32_t>(c->c.rows.size()) : 0;
}

kiln_status kiln_build_comparison_row(const kiln_build_comparison* c, int32_t index, kiln_build_error_row* row) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, c));
    KILN_TRY(need(__func__, row));
    if (index < 0 || index >= static_cast<int32_t>(c->c.rows.size()))
      return kiln::invalid_argument("row index " + std::to_string(index) + " out of range");
    const kiln::ErrorRow& r = c->c.rows[index];
    row->tensor = r.tensor.c_str();
    row->node = r.node.c_str();
    row->is_output = r.is_output;
    row->per_layer = r.per_layer;
    row->max_abs = r.e.max_abs;
    row->mean_abs = r.e.mean_abs;
    row->max_rel = r.e.max_rel;
    row->rel_l2 = r.e.rel_l2;
    row->cosine = r.e.cosine;
    return kiln::Status::ok();
  });
}

const char* kiln_build_comparison_device(const kiln_build_comparison* c) { return c ? c->c.device.c_str() : ""; }

kiln_status kiln_build_comparison_unmatched(const kiln_build_comparison* c, int32_t* unmatched, int32_t* total) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, c));
    if (unmatched) *unmatched = static_cast<int32_t>(c->c.unmatched);
    if (total) *total = static_cast<int32_t>(c->c.node_outputs);
    return kiln::Status::ok();
  });
}

const kiln_build_tensors* kiln_build_comparison_values(const kiln_build_comparison* c, int32_t which) {
  if (!c || (which != 0 && which != 1)) return nullptr;
  return which == 0 ? &c->got : &c->want;
}

kiln_status kiln_build_sweep_run(const char* model, const kiln_build_options* opts, const int32_t* precisions,
                                 int32_t num_precisions, kiln_build_sample_fn eval_fn, void* eval_user,
                                 const int64_t* labels, size_t num_labels, double seconds, kiln_build_sweep** out) {
  return sweep(__func__, model, opts, precisions, num_precisions, eval_fn, eval_user, nullptr, labels, num_labels,
               seconds, out);
}

kiln_status kiln_build_sweep_run_dir(const char* model, const kiln_build_options* opts, const int32_t* precisions,
                                     int32_t num_precisions, const char* eval_dir, const int64_t* labels,
                                     size_t num_labels, double seconds, kiln_build_sweep** out) {
  return sweep(__func__, model, opts, precisions, num_precisions, nullptr, nullptr, eval_dir, labels, num_labels,
               seconds, out);
}

void kiln_build_sweep_release(kiln_build_sweep* s) { delete s; }

int32_t kiln_build_sweep_num_rows(const kiln_build_sweep* s) { return s ? static_cast<int32_t>(s->r.rows.size()) : 0; }

kiln_status kiln_build_sweep_row_get(const kiln_build_sweep* s, int32_t index, kiln_build_sweep_row* row) {
  return guarded(__func__, [&] {
    KILN_TRY(need(__func__, s));
    KILN_TRY(need(__func__, row));
    if (index < 0 || index >= static_cast<int32_t>(s->r.rows.size()))
      return kiln::invalid_argument("row index " + std::to_string(index) + " out of range");
    const kiln::SweepRow& r = s->r.rows[index];
    row->precision = precision_code(r.precision);
    row->available = r.available;
    row->reason = r.reason.c_str();
    row->plan_bytes = r.plan_bytes;
    row->latency_ms = r.latency_ms;
    row->per_second = r.per_second;
    row->max_rel_l2 = r.max_rel_l2;
    row->min_cosine = r.min_cosine;
    row->top1_correct = r.top1_correct;
    row->top1_rows = r.top1_rows;
    return kiln::Status::ok();
  });
}

const char* kiln_build_sweep_device(const kiln_build_sweep* s) { return s ? s->r.device.c_str() : ""; }
int32_t kiln_build_sweep_num_samples(const kiln_build_sweep* s) { return s ? static_cast<int32_t>(s->r.samples) : 0; }

}  // extern "C"
