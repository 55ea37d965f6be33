// kiln.build / kiln.compare / kiln.sweep's native halves over the compiler C API
// (include/kiln/kiln_build.h). Python callables (the calibration iterable, the log) are called
// back with the GIL taken; an exception they raise is re-raised when the call returns.
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <memory>
#include <vector>

#include "ext.h"

namespace kiln_py {
namespace {

template <typename T, void (*Release)(T*)>
struct Owned {
  T* p = nullptr;
  ~Owned() { Release(p); }
};

// A Python exception raised inside a callback, kept until the C call returns.
struct Stash {
  std::unique_ptr<nb::python_error> error;
  void keep(nb::python_error& e) {
    if (!error) error = std::make_unique<nb::python_error>(std::move(e));
  }
  void rethrow() {
    if (error) {
      std::unique_ptr<nb::python_error> e = std::move(error);
      throw std::move(*e);
    }
  }
};

struct Source {
  nb::object iterator;
  Stash* stash;
};

void add_array(kiln_build_tensors* set, const std::string& name, nb::handle value) {
  Array a;
  if (!nb::try_cast<Array>(value, a, false)) throw Error("array '" + name + "': expected a C-contiguous numpy array");
  const int32_t dtype = kiln_dtype_of(a.dtype(), "array '" + name + "'");
  if (a.ndim() > KILN_MAX_RANK) throw Error("array '" + name + "': rank above " + std::to_string(KILN_MAX_RANK));
  int64_t dims[KILN_MAX_RANK];
  for (size_t d = 0; d < a.ndim(); ++d) dims[d] = static_cast<int64_t>(a.shape(d));
  check_build(kiln_build_tensors_add(set, name.c_str(), dtype, dims, static_cast<int32_t>(a.ndim()), a.data(),
                                     a.nbytes()));
}

void add_arrays(kiln_build_tensors* set, nb::handle mapping, const char* what) {
  if (!nb::isinstance<nb::dict>(mapping)) throw Error(std::string(what) + ": expected a dict of name -> numpy array");
  for (auto [k, v] : nb::borrow<nb::dict>(mapping)) {
    if (!nb::isinstance<nb::str>(k)) throw Error(std::string(what) + ": array names must be strings");
    add_array(set, nb::cast<std::string>(k), v);
  }
}

int32_t next_sample(void* user, int32_t index, kiln_build_tensors* sample) {
  auto* src = static_cast<Source*>(user);
  nb::gil_scoped_acquire g;
  try {
    PyObject* item = PyIter_Next(src->iterator.ptr());
    if (!item) {
      if (PyErr_Occurred()) throw nb::python_error();
      return 0;
    }
    nb::object sample_obj = nb::steal(item);
    add_arrays(sample, sample_obj, ("sample #" + std::to_string(index)).c_str());
    return 1;
  } catch (nb::python_error& e) {
    kiln_build_tensors_set_error(sample, e.what());
    src->stash->keep(e);
  } catch (const std::exception& e) {
    kiln_build_tensors_set_error(sample, e.what());
  }
  return -1;
}

struct Log {
  nb::object fn;
  Stash* stash;
};

void log_line(int32_t level, const char* line, void* user) {
  auto* log = static_cast<Log*>(user);
  nb::gil_scoped_acquire g;
  try {
    log->fn(level == KILN_LOG_PROGRESS ? "progress" : "info", std::string(line));
  } catch (nb::python_error& e) {
    log->stash->keep(e);
  }
}

std::vector<int64_t> dims_of(nb::handle seq, const std::string& what) {
  std::vector<int64_t> dims;
  try {
    for (nb::handle d : seq) dims.push_back(nb::cast<int64_t>(d));
  } catch (const std::exception&) {
    throw Error(what + ": expected a sequence of integers");
  }
  return dims;
}

kiln_precision precision_of(const std::string& name) {
  kiln_precision p;
  check_build(kiln_build_parse_precision(name.c_str(), &p));
  return p;
}

// The typed options from kiln/__init__.py's keyword arguments (already normalized there).
void apply_option(kiln_build_options* o, const std::string& key, nb::handle v);

void apply_options(kiln_build_options* o, nb::dict opts) {
  for (auto [k, v] : opts) {
    const std::string key = nb::cast<std::string>(k);
    try {
      apply_option(o, key, v);
    } catch (const std::bad_cast&) {  // nb::cast_error: a str with lone surrogates, a float for an int...
      PyErr_Clear();
      throw Error("build option '" + key + "': a value of the wrong kind");
    }
  }
}

void apply_option(kiln_build_options* o, const std::string& key, nb::handle v) {
  if (v.is_none()) return;
  if (key == "device") check_build(kiln_build_options_set_device(o, nb::cast<std::string>(v).c_str()));
  else if (key == "precision") check_build(kiln_build_options_set_precision(o, precision_of(nb::cast<std::string>(v))));
  else if (key == "layer_precision")
    for (auto [node, p] : nb::borrow<nb::dict>(v))
      check_build(kiln_build_options_set_layer_precision(o, nb::cast<std::string>(node).c_str(),
                                                         precision_of(nb::cast<std::string>(p))));
  else if (key == "fallback_precision")
    check_build(kiln_build_options_set_fallback_precision(o, precision_of(nb::cast<std::string>(v))));
  else if (key == "io_precision")
    check_build(kiln_build_options_set_io_precision(o, precision_of(nb::cast<std::string>(v))));
  else if (key == "shapes")
    for (auto [name, dims] : nb::borrow<nb::dict>(v)) {
      const std::string n = nb::cast<std::string>(name);
      std::vector<int64_t> d = dims_of(dims, "shapes['" + n + "']");
      check_build(kiln_build_options_set_shape(o, n.c_str(), d.data(), static_cast<int32_t>(d.size())));
    }
  else if (key == "shape_ranges")
    for (auto [name, range] : nb::borrow<nb::dict>(v)) {
      const std::string n = nb::cast<std::string>(name);
      nb::tuple t = nb::borrow<nb::tuple>(range);
      std::vector<int64_t> lo = dims_of(t[0], "min_shapes['" + n + "']"), hi = dims_of(t[1], "max_shapes['" + n + "']");
      if (lo.size() != hi.size())
        throw Error("input '" + n + "': min_shapes and max_shapes must have the same rank");
      check_build(kiln_build_options_set_shape_range(o, n.c_str(), lo.data(), hi.data(), static_cast<int32_t>(lo.size())));
    }
  else if (key == "freeze")
    for (auto [name, arr] : nb::borrow<nb::dict>(v)) {
      const std::string n = nb::cast<std::string>(name);
      Array a;
      if (!nb::try_cast<Array>(arr, a, false)) throw Error("freeze['" + n + "']: expected a C-contiguous numpy array");
      int64_t dims[KILN_MAX_RANK];
      if (a.ndim() > KILN_MAX_RANK) throw Error("freeze['" + n + "']: rank too high");
      for (size_t d = 0; d < a.ndim(); ++d) dims[d] = static_cast<int64_t>(a.shape(d));
      check_build(kiln_build_options_freeze_input(o, n.c_str(), kiln_dtype_of(a.dtype(), "freeze['" + n + "']"), dims,
                                                  static_cast<int32_t>(a.ndim()), a.data(), a.nbytes()));
    }
  else if (key == "fuse") check_build(kiln_build_options_set_fusion(o, nb::cast<bool>(v)));
  else if (key == "partition") {
    const std::string p = nb::cast<std::string>(v);
    if (p != "device" && p != "cost") throw Error("partition must be 'device' or 'cost', got '" + p + "'");
    check_build(kiln_build_options_set_partition(o, p == "cost" ? KILN_PARTITION_COST : KILN_PARTITION_DEVICE));
  } else if (key == "cpu_nodes")
    for (nb::handle n : v) check_build(kiln_build_options_add_cpu_node(o, nb::cast<std::string>(n).c_str()));
  else if (key == "transfer_gbps") check_build(kiln_build_options_set_transfer_gbps(o, nb::cast<double>(v)));
  else if (key == "accuracy_budget") check_build(kiln_build_options_set_accuracy_budget(o, nb::cast<double>(v)));
  else if (key == "smooth_quant") check_build(kiln_build_options_set_smooth_quant(o, nb::cast<double>(v)));
  else if (key == "bias_correction") check_build(kiln_build_options_set_bias_correction(o, nb::cast<bool>(v)));
  else if (key == "accuracy_check") check_build(kiln_build_options_set_accuracy_check(o, nb::cast<bool>(v)));
  else if (key == "calibrator") {
    const std::string c = nb::cast<std::string>(v);
    kiln_calibrator kind;
    double pct = 0;
    if (c == "entropy") kind = KILN_CALIBRATOR_ENTROPY;
    else if (c == "minmax") kind = KILN_CALIBRATOR_MINMAX;
    else if (c == "mse") kind = KILN_CALIBRATOR_MSE;
    else if (c == "percentile") kind = KILN_CALIBRATOR_PERCENTILE;
    else if (c.rfind("percentile=", 0) == 0) {
      kind = KILN_CALIBRATOR_PERCENTILE;
      char* end = nullptr;
      pct = std::strtod(c.c_str() + 11, &end);
      if (c.size() == 11 || *end) pct = -1;
    } else
      throw Error("unknown calibrator '" + c + "' (entropy, minmax, mse or percentile[=P])");
    check_build(kiln_build_options_set_calibrator(o, kind, pct));
  } else if (key == "calib_dir") check_build(kiln_build_options_set_calib_dir(o, nb::cast<std::string>(v).c_str()));
  else if (key == "calib_cache") check_build(kiln_build_options_set_calib_cache(o, nb::cast<std::string>(v).c_str()));
  else if (key == "tune") {
    nb::tuple t = nb::borrow<nb::tuple>(v);
    const std::string cache = t[1].is_none() ? "" : nb::cast<std::string>(t[1]);
    check_build(kiln_build_options_set_tune(o, nb::cast<bool>(t[0]), cache.c_str()));
  } else if (key == "allow_tf32") check_build(kiln_build_options_set_allow_tf32(o, nb::cast<bool>(v)));
  else if (key == "max_memory") check_build(kiln_build_options_set_max_memory(o, nb::cast<uint64_t>(v)));
  else if (key == "allow_over_memory") check_build(kiln_build_options_set_allow_over_memory(o, nb::cast<bool>(v)));
  else
    throw Error("unknown build option '" + key + "'");
}

struct Options {
  Owned<kiln_build_options, kiln_build_options_release> o;
  Stash stash;
  Source calib;
  Log log;
  Options(nb::dict opts, nb::object calib_iter, nb::object log_fn) {
    check_build(kiln_build_options_create(&o.p));
    apply_options(o.p, opts);
    calib.stash = log.stash = &stash;
    if (!calib_iter.is_none()) {
      calib.iterator = calib_iter;
      check_build(kiln_build_options_set_calib_source(o.p, next_sample, &calib));
    }
    if (!log_fn.is_none()) {
      log.fn = log_fn;
      check_build(kiln_build_options_set_log(o.p, log_line, &log));
    }
  }
  // Stashed Python exceptions win over kiln's message about them.
  void finish(kiln_status s) {
    if (s != KILN_OK) {
      const std::string msg = kiln_build_last_error();
      stash.rethrow();
      throw Error(msg);
    }
    stash.rethrow();
  }
};

nb::tuple build(nb::object path, nb::object data, std::string base_dir, nb::dict opts, nb::object calib, nb::object log) {
  Options o(opts, calib, log);
  Owned<kiln_build_result, kiln_build_result_release> r;
  kiln_status s;
  if (!path.is_none()) {
    const std::string p = nb::cast<std::string>(path);
    nb::gil_scoped_release g;
    s = kiln_build_from_file(p.c_str(), o.o.p, &r.p);
  } else {
    nb::bytes b = nb::borrow<nb::bytes>(data);
    nb::gil_scoped_release g;
    s = kiln_build_from_memory(b.c_str(), b.size(), base_dir.empty() ? nullptr : base_dir.c_str(), o.o.p, &r.p);
  }
  o.finish(s);
  size_t size = 0;
  const void* bytes = kiln_build_result_data(r.p, &size);
  return nb::make_tuple(nb::bytes(static_cast<const char*>(bytes), size), std::string(kiln_build_result_summary(r.p)));
}

nb::dict tensors_dict(const kiln_build_tensors* set) {
  nb::dict d;
  for (int32_t i = 0; i < kiln_build_tensors_count(set); ++i) {
    kiln_tensor_info info;
    const void* src = nullptr;
    check_build(kiln_build_tensors_get(set, i, &info, &src));
    void* dst = nullptr;
    nb::object arr = new_array(info.dtype, info.dims, info.rank, &dst);
    if (info.size_bytes) std::memcpy(dst, src, info.size_bytes);
    d[info.name] = arr;
  }
  return d;
}

nb::dict compare(nb::bytes plan, std::string reference, nb::object inputs, std::string device, bool per_layer) {
  Owned<kiln_build_tensors, kiln_build_tensors_release> in;
  check_build(kiln_build_tensors_create(&in.p));
  if (!inputs.is_none()) add_arrays(in.p, inputs, "inputs");
  Owned<kiln_build_comparison, kiln_build_comparison_release> c;
  kiln_status s;
  {
    nb::gil_scoped_release g;
    s = kiln_build_compare(plan.c_str(), plan.size(), reference.c_str(), in.p, device.c_str(), per_layer, &c.p);
  }
  check_build(s);
  nb::list outputs, layers;
  for (int32_t i = 0; i < kiln_build_comparison_num_rows(c.p); ++i) {
    kiln_build_error_row r;
    check_build(kiln_build_comparison_row(c.p, i, &r));
    nb::dict d;
    d["tensor"] = std::string(r.tensor);
    if (r.per_layer) d["node"] = std::string(r.node);
    d["is_output"] = r.is_output != 0;
    d["max_abs"] = r.max_abs;
    d["mean_abs"] = r.mean_abs;
    d["max_rel"] = r.max_rel;
    d["rel_l2"] = r.rel_l2;
    d["cosine"] = r.cosine;
    (r.per_layer ? layers : outputs).append(d);
  }
  nb::dict out;
  out["device"] = std::string(kiln_build_comparison_device(c.p));
  out["outputs"] = outputs;
  if (per_layer) {
    int32_t unmatched = 0, total = 0;
    check_build(kiln_build_comparison_unmatched(c.p, &unmatched, &total));
    out["layers"] = layers;
    out["unmatched"] = unmatched;
    out["node_outputs"] = total;
    out["plan_values"] = tensors_dict(kiln_build_comparison_values(c.p, 0));
    out["reference_values"] = tensors_dict(kiln_build_comparison_values(c.p, 1));
  }
  return out;
}

nb::dict sweep(std::string model, nb::dict opts, nb::object calib, std::vector<std::string> precisions,
               nb::object eval, nb::object eval_dir, std::vector<int64_t> labels, double seconds, nb::object log) {
  Options o(opts, calib, log);
  std::vector<int32_t> codes;
  for (const std::string& p : precisions) codes.push_back(precision_of(p));
  Source eval_src{eval, &o.stash};
  Owned<kiln_build_sweep, kiln_build_sweep_release> r;
  kiln_status s;
  const std::string dir = eval_dir.is_none() ? "" : nb::cast<std::string>(eval_dir);
  {
    nb::gil_scoped_release g;
    if (!eval.is_none())
      s = kiln_build_sweep_run(model.c_str(), o.o.p, codes.data(), static_cast<int32_t>(codes.size()), next_sample,
                               &eval_src, labels.data(), labels.size(), seconds, &r.p);
    else
      s = kiln_build_sweep_run_dir(model.c_str(), o.o.p, codes.data(), static_cast<int32_t>(codes.size()),
                                   dir.empty() ? nullptr : dir.c_str(), labels.data(), labels.size(), seconds, &r.p);
  }
  o.finish(s);
  nb::list rows;
  for (int32_t i = 0; i < kiln_build_sweep_num_rows(r.p); ++i) {
    kiln_build_sweep_row row;
    check_build(kiln_build_sweep_row_get(r.p, i, &row));
    nb::dict d;
    d["precision"] = std::string(kiln_build_precision_name(static_cast<kiln_precision>(row.precision)));
    d["available"] = row.available != 0;
    d["reason"] = std::string(row.reason);
    d["plan_bytes"] = row.plan_bytes;
    d["latency_ms"] = row.latency_ms;
    d["per_second"] = row.per_second;
    d["max_rel_l2"] = row.max_rel_l2;
    d["min_cosine"] = row.min_cosine;
    if (!labels.empty()) {
      d["top1"] = row.top1_rows ? double(row.top1_correct) / double(row.top1_rows) : 0.0;
      d["top1_correct"] = row.top1_correct;
      d["top1_rows"] = row.top1_rows;
    }
    rows.append(d);
  }
  nb::dict out;
  out["device"] = std::string(kiln_build_sweep_device(r.p));
  out["samples"] = kiln_build_sweep_num_samples(r.p);
  out["rows"] = rows;
  return out;
}

}  // namespace

void bind_build(nb::module_& m) {
  m.def("build", &build, nb::arg("path").none(), nb::arg("data").none(), nb::arg("base_dir"), nb::arg("options"),
        nb::arg("calib").none(), nb::arg("log").none());
  m.def("compare", &compare, nb::arg("plan"), nb::arg("reference"), nb::arg("inputs").none(), nb::arg("device"),
        nb::arg("per_layer"));
  m.def("sweep", &sweep, nb::arg("model"), nb::arg("options"), nb::arg("calib").none(), nb::arg("precisions"),
        nb::arg("eval").none(), nb::arg("eval_dir").none(), nb::arg("labels"), nb::arg("seconds"), nb::arg("log").none());
  m.def("build_version", [] { return std::string(kiln_build_version()); });
}

}  // namespace kiln_py
