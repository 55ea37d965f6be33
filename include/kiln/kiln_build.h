/* kiln compiler C API: ONNX model -> plan, and the accuracy tools built on it.
 *
 * libkiln_compiler (shared) exports these kiln_build_* functions only. It carries its own copy
 * of the runtime (constant folding, calibration and the comparisons run plans), so it needs
 * nothing but this header and kiln.h (for kiln_status, kiln_dtype and kiln_tensor_info); the
 * plans it returns are loaded with the runtime API (kiln_plan_load_memory / _file).
 * `kiln build`, `kiln compare` and `kiln sweep` and the Python package call these functions.
 *
 * Conventions are kiln.h's: every function that can fail returns kiln_status; on failure
 * kiln_build_last_error() holds the calling thread's one-line message; objects returned through
 * `out` pointers belong to the caller and are freed by the matching *_release (NULL accepted);
 * strings returned by queries belong to the object queried.
 *
 * Thread safety: an options object or tensor set may be read by several builds at once but not
 * changed meanwhile; results are immutable. Builds on different threads may run concurrently.
 */
#ifndef KILN_KILN_BUILD_H_
#define KILN_KILN_BUILD_H_

#include "kiln/kiln.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum kiln_precision {
  KILN_PRECISION_FP32 = 0,
  KILN_PRECISION_FP16 = 1,
  KILN_PRECISION_INT8 = 2,      /* post-training quantization: needs calibration samples */
  KILN_PRECISION_FP8_E4M3 = 3,  /* "fp8" */
  KILN_PRECISION_FP8_E5M2 = 4,  /* "fp8-e5m2" */
  KILN_PRECISION_BEST = 5       /* per layer the fastest that keeps the accuracy budget */
} kiln_precision;

typedef enum kiln_calibrator {
  KILN_CALIBRATOR_DEFAULT = 0,  /* entropy for int8 layers, minmax when every layer is fp8 */
  KILN_CALIBRATOR_ENTROPY = 1,
  KILN_CALIBRATOR_MINMAX = 2,
  KILN_CALIBRATOR_PERCENTILE = 3,
  KILN_CALIBRATOR_MSE = 4       /* the range of least squared quantization error (ModelOpt's) */
} kiln_calibrator;

typedef enum kiln_partition_policy {
  KILN_PARTITION_DEVICE = 0, /* every node the device supports runs there */
  KILN_PARTITION_COST = 1    /* per node the cheaper backend by the cost model */
} kiln_partition_policy;

typedef enum kiln_log_level {
  KILN_LOG_INFO = 0,     /* one line of the build's report (calibration table, moved layers) */
  KILN_LOG_PROGRESS = 1  /* a progress update that replaces the previous one (calibration bar) */
} kiln_log_level;

/* Receives the build's report one line at a time, without the newline. Called on the thread
 * that called the build function; must not call back into the same build. */
typedef void (*kiln_build_log_fn)(int32_t level, const char* line, void* user);

typedef struct kiln_build_options kiln_build_options;
typedef struct kiln_build_tensors kiln_build_tensors;
typedef struct kiln_build_result kiln_build_result;
typedef struct kiln_build_comparison kiln_build_comparison;
typedef struct kiln_build_sweep kiln_build_sweep;

/* Yields sample `index` (0, 1, 2, ...) by adding one array per model input to `sample` with
 * kiln_build_tensors_add. Returns 1 when it added a sample, 0 when there are no more, and
 * -1 to stop the build with an error (the message given with kiln_build_tensors_set_error, or a
 * generic one). Called on the building thread, once per sample, before calibration starts. */
typedef int32_t (*kiln_build_sample_fn)(void* user, int32_t index, kiln_build_tensors* sample);

/* ---- library ---- */
KILN_API const char* kiln_build_last_error(void);
KILN_API const char* kiln_build_version(void);
/* "fp32", "fp16", "int8", "fp8", "fp8-e5m2", "best"; NULL for another value. */
KILN_API const char* kiln_build_precision_name(kiln_precision p);
/* Parses one of the names above into *out. */
KILN_API kiln_status kiln_build_parse_precision(const char* name, kiln_precision* out);

/* ---- named tensor sets (a calibration sample, the inputs of a comparison) ---- */
KILN_API kiln_status kiln_build_tensors_create(kiln_build_tensors** out);
KILN_API void kiln_build_tensors_release(kiln_build_tensors* set);
/* Adds (or replaces) array `name`: C-order `data` of `size_bytes` bytes, copied. */
KILN_API kiln_status kiln_build_tensors_add(kiln_build_tensors* set, const char* name, int32_t dtype,
                                            const int64_t* dims, int32_t rank, const void* data, size_t size_bytes);
/* The message a kiln_build_sample_fn returning -1 reports (copied). */
KILN_API kiln_status kiln_build_tensors_set_error(kiln_build_tensors* set, const char* message);
KILN_API int32_t kiln_build_tensors_count(const kiln_build_tensors* set);
/* Array `index` in name order: its info and its bytes (owned by the set). */
KILN_API kiln_status kiln_build_tensors_get(const kiln_build_tensors* set, int32_t index, kiln_tensor_info* info,
                                            const void** data);

/* ---- build options (the `kiln build` flags, typed) ---- */
KILN_API kiln_status kiln_build_options_create(kiln_build_options** out);
KILN_API void kiln_build_options_release(kiln_build_options* opts);
/* Target device: "auto" (default), "cpu", "opencl", "opencl:N", or a list "opencl:0,cpu". */
KILN_API kiln_status kiln_build_options_set_device(kiln_build_options* opts, const char* device);
KILN_API kiln_status kiln_build_options_set_precision(kiln_build_options* opts, kiln_precision precision);
/* Runs ONNX node `node` in `precision` (not BEST) instead of the default. */
KILN_API kiln_status kiln_build_options_set_layer_precision(kiln_build_options* opts, const char* node,
                                                            kiln_precision precision);
/* Fixes a dynamic input's shape (the point a dynamic plan is tuned for). */
KILN_API kiln_status kiln_build_options_set_shape(kiln_build_options* opts, const char* input, const int64_t* dims,
                                                  int32_t rank);
/* A dynamic plan: the input runs any shape from min_dims to max_dims. */
KILN_API kiln_status kiln_build_options_set_shape_range(kiln_build_options* opts, const char* input,
                                                        const int64_t* min_dims, const int64_t* max_dims, int32_t rank);
/* Fixes an input's value at build time (it becomes a constant); the bytes are copied. */
KILN_API kiln_status kiln_build_options_freeze_input(kiln_build_options* opts, const char* input, int32_t dtype,
                                                     const int64_t* dims, int32_t rank, const void* data,
                                                     size_t size_bytes);
KILN_API kiln_status kiln_build_options_set_fusion(kiln_build_options* opts, int32_t enabled);
KILN_API kiln_status kiln_build_options_set_partition(kiln_build_options* opts, kiln_partition_policy policy);
KILN_API kiln_status kiln_build_options_add_cpu_node(kiln_build_options* opts, const char* node);
/* Host<->device bandwidth the cost model assumes (> 0). */
KILN_API kiln_status kiln_build_options_set_transfer_gbps(kiln_build_options* opts, double gbps);
/* Largest relative L2 error any output may have against FP32 over the calibration samples (> 0). */
KILN_API kiln_status kiln_build_options_set_accuracy_budget(kiln_build_options* opts, double budget);
/* SmoothQuant for INT8 MatMul/Gemm: alpha in [0, 1]; a negative alpha turns it off (default). */
KILN_API kiln_status kiln_build_options_set_smooth_quant(kiln_build_options* opts, double alpha);
/* Bias correction of INT8/FP8 layers (a Conv's bias and a Gemm's C absorb the output mean shift
 * that rounding the weights causes, from the calibration samples' input means); on by default. */
KILN_API kiln_status kiln_build_options_set_bias_correction(kiln_build_options* opts, int32_t enabled);
/* The accuracy checks of calibrated INT8/FP8 builds (on by default): the layer check (a layer far
 * out of line with the others gets other ranges or stays FP32) and, without an
 * accuracy budget, a budget of 0.1 relative L2 error on every output over every calibration
 * sample, kept by moving the most sensitive layers to FP32. 0 turns both off. */
KILN_API kiln_status kiln_build_options_set_accuracy_check(kiln_build_options* opts, int32_t enabled);
/* `percentile` is used by KILN_CALIBRATOR_PERCENTILE only (0: the default 99.99). */
KILN_API kiln_status kiln_build_options_set_calibrator(kiln_build_options* opts, kiln_calibrator calibrator,
                                                       double percentile);
/* Calibration samples from a folder (one .npz per sample), or from `fn` (replaces the folder). */
KILN_API kiln_status kiln_build_options_set_calib_dir(kiln_build_options* opts, const char* dir);
KILN_API kiln_status kiln_build_options_set_calib_source(kiln_build_options* opts, kiln_build_sample_fn fn,
                                                         void* user);
/* Calibration ranges reused from `path` when present, written there otherwise. */
KILN_API kiln_status kiln_build_options_set_calib_cache(kiln_build_options* opts, const char* path);
/* `kiln build --tune [--tuning-cache FILE]`, any precision: times the kernel variants of every
 * distinct layer on the device and keeps the fastest (with BEST, also ranks precisions by
 * measured latency); `cache_path` (NULL or "": none) keeps the timings, reused when present.
 * A cache path with enabled = 0 is refused. */
KILN_API kiln_status kiln_build_options_set_tune(kiln_build_options* opts, int32_t enabled, const char* cache_path);
/* 1: FP32 Conv/Gemm/MatMul may run on TF32 tensor cores where the OpenCL device has them
 * (NVIDIA, compute capability 8.0+; operands rounded to a 10-bit mantissa, float32 sums), as
 * TensorRT's TF32 flag; 0 (default): never. */
KILN_API kiln_status kiln_build_options_set_allow_tf32(kiln_build_options* opts, int32_t enabled);
/* `kiln build --layout`: "auto" (default: convolutions keep their activations channels-last
 * where the target's kernels want it, the tensor cores of INT8, FP8, FP16 and TF32), "nchw"
 * (never), "nhwc" (every convolution that can, whatever the device). Anything else is refused. */
KILN_API kiln_status kiln_build_options_set_layout(kiln_build_options* opts, const char* layout);
/* `kiln build --max-memory`: the most host memory the plan may need (activations at their peak
 * plus weights); 0 (default): the host's physical memory. An OpenCL plan must also fit the
 * target device's memory. A plan over either bound is refused, naming its peak. */
KILN_API kiln_status kiln_build_options_set_max_memory(kiln_build_options* opts, uint64_t bytes);
/* 1: write a plan over those bounds anyway (`--allow-over-memory`). */
KILN_API kiln_status kiln_build_options_set_allow_over_memory(kiln_build_options* opts, int32_t enabled);
/* `kiln build --fallback-precision`: what the nodes of an INT8/FP8 build that quantization
 * leaves in floating point (attention, LayerNorm, Softmax, GELU, residual Adds: all but the
 * quantized linear layers and their Quantize/Dequantize nodes) run in: KILN_PRECISION_FP32
 * (default) or KILN_PRECISION_FP16 (as TensorRT's --int8 --fp16). A layer given FP32 with
 * kiln_build_options_set_layer_precision stays FP32; with FP16, a layer the accuracy budget (or
 * the default check) moves out of INT8/FP8 tries FP16 before FP32. Other precisions are refused. */
KILN_API kiln_status kiln_build_options_set_fallback_precision(kiln_build_options* opts, kiln_precision precision);
/* `kiln build --io-precision`: the dtype of the plan's float32 inputs and outputs:
 * KILN_PRECISION_FP32 (default: as the model declares them) or KILN_PRECISION_FP16 (float16
 * tensors, half the bytes to and from the host, as TensorRT's --inputIOFormats/--outputIOFormats
 * fp16; integer inputs such as token ids are untouched). Other precisions are refused. */
KILN_API kiln_status kiln_build_options_set_io_precision(kiln_build_options* opts, kiln_precision precision);
/* Where the report goes (default: nowhere). */
KILN_API kiln_status kiln_build_options_set_log(kiln_build_options* opts, kiln_build_log_fn fn, void* user);

/* ---- building ---- */
KILN_API kiln_status kiln_build_from_file(const char* model_path, const kiln_build_options* opts,
                                          kiln_build_result** out);
/* `base_dir` (may be NULL) is where external tensor data files are looked up. */
KILN_API kiln_status kiln_build_from_memory(const void* model, size_t size, const char* base_dir,
                                            const kiln_build_options* opts, kiln_build_result** out);
KILN_API void kiln_build_result_release(kiln_build_result* result);
/* The plan's bytes, owned by the result (for kiln_plan_load_memory). */
KILN_API const void* kiln_build_result_data(const kiln_build_result* result, size_t* size);
/* Writes the plan to `path` (through a temporary file: never a truncated plan). */
KILN_API kiln_status kiln_build_result_write(const kiln_build_result* result, const char* path);
/* "12 nodes (10 opencl, 2 cpu), 45012 weight bytes, target opencl 'NAME'[, dynamic B in [1, 8]]" */
KILN_API const char* kiln_build_result_summary(const kiln_build_result* result);

/* ---- kiln compare: a plan against the FP32 reference built from its model ---- */
typedef struct kiln_build_error_row {
  const char* tensor; /* owned by the comparison */
  const char* node;   /* the plan node that computes it ("" for an output row) */
  int32_t is_output;  /* 1: a plan output */
  int32_t per_layer;  /* 0: a row of the outputs table; 1: a per-layer row (outputs included) */
  double max_abs, mean_abs, max_rel, rel_l2, cosine;
} kiln_build_error_row;

/* Runs the plan (`plan`, `plan_size` bytes) on `device` and an FP32 cpu plan built from
 * `reference_model` on the same inputs: `inputs` (may be NULL; inputs not given get random
 * values from a fixed seed). Rows: the outputs in plan order, then with `per_layer` every
 * intermediate tensor that has a tensor of the same name and shape in the reference (built
 * without fusion), worst relative L2 error first. */
KILN_API kiln_status kiln_build_compare(const void* plan, size_t plan_size, const char* reference_model,
                                        const kiln_build_tensors* inputs, const char* device, int32_t per_layer,
                                        kiln_build_comparison** out);
KILN_API void kiln_build_comparison_release(kiln_build_comparison* c);
KILN_API int32_t kiln_build_comparison_num_rows(const kiln_build_comparison* c);
KILN_API kiln_status kiln_build_comparison_row(const kiln_build_comparison* c, int32_t index, kiln_build_error_row* row);
/* Label of the device the plan ran on. */
KILN_API const char* kiln_build_comparison_device(const kiln_build_comparison* c);
/* Per-layer: node outputs of the plan not compared (renamed or inserted by fusion or
 * quantization), out of how many node outputs it has. */
KILN_API kiln_status kiln_build_comparison_unmatched(const kiln_build_comparison* c, int32_t* unmatched, int32_t* total);
/* The compared values: which = 0 the plan's, 1 the reference's, by tensor name (owned by c). */
KILN_API const kiln_build_tensors* kiln_build_comparison_values(const kiln_build_comparison* c, int32_t which);

/* ---- kiln sweep: one model in several precisions side by side ---- */
typedef struct kiln_build_sweep_row {
  int32_t precision;   /* a kiln_precision */
  int32_t available;   /* 0: it did not build; `reason` says why */
  const char* reason;  /* owned by the sweep; "" when available */
  uint64_t plan_bytes;
  double latency_ms;   /* median, one inference in flight */
  double per_second;   /* inferences per second */
  double max_rel_l2;   /* worst relative L2 error of any output over the evaluation samples */
  double min_cosine;   /* lowest cosine similarity of any output */
  int64_t top1_correct, top1_rows; /* with labels; else 0 */
} kiln_build_sweep_row;

/* Builds `model` with `opts` (device, shapes, calibration samples, calibrator) once per entry of
 * `precisions` (NULL: fp32, fp16, int8, fp8), runs each over the evaluation samples (`eval_fn`;
 * NULL: the calibration samples) against the FP32 cpu reference, times it for `seconds` and,
 * given `labels` (one class index per row of the first output over all samples), counts top-1.
 * Each finished row is also reported through the options' log callback. */
KILN_API kiln_status kiln_build_sweep_run(const char* model, const kiln_build_options* opts,
                                          const int32_t* precisions, int32_t num_precisions,
                                          kiln_build_sample_fn eval_fn, void* eval_user, const int64_t* labels,
                                          size_t num_labels, double seconds, kiln_build_sweep** out);
/* As kiln_build_sweep_run with the evaluation samples from a folder (NULL: the calibration ones). */
KILN_API kiln_status kiln_build_sweep_run_dir(const char* model, const kiln_build_options* opts,
                                              const int32_t* precisions, int32_t num_precisions, const char* eval_dir,
                                              const int64_t* labels, size_t num_labels, double seconds,
                                              kiln_build_sweep** out);
KILN_API void kiln_build_sweep_release(kiln_build_sweep* s);
KILN_API int32_t kiln_build_sweep_num_rows(const kiln_build_sweep* s);
KILN_API kiln_status kiln_build_sweep_row_get(const kiln_build_sweep* s, int32_t index, kiln_build_sweep_row* row);
KILN_API const char* kiln_build_sweep_device(const kiln_build_sweep* s);
KILN_API int32_t kiln_build_sweep_num_samples(const kiln_build_sweep* s);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_BUILD_H_ */
