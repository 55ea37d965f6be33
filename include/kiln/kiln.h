/* kiln runtime C API.
 *
 * Load a plan written by `kiln build`, open an execution context on a device, bind input and
 * output buffers, run. The runtime links OpenCL (and CLBlast) only: no compiler, protobuf or
 * ONNX code is needed to embed it.
 *
 * Conventions
 *  - Every function that can fail returns kiln_status; KILN_OK (0) is success.
 *  - On failure, kiln_last_error() returns a message naming the problem (file, tensor, node,
 *    expected vs got). The message is thread-local: it belongs to the thread that made the call
 *    and stays valid until that thread's next kiln call.
 *  - Objects are created by kiln_*_create/load functions, which return ownership to the caller,
 *    and released by the matching kiln_*_release function. Release functions accept NULL.
 *  - Every handle passed in is checked against the live ones: a released (or never issued)
 *    handle gets KILN_ERROR_INVALID_ARGUMENT, never a crash; a second release included.
 *  - Strings returned by query functions are owned by the object queried and live as long as it.
 *
 * Thread safety
 *  - A kiln_plan is immutable after loading: any number of threads may query it and create
 *    contexts from it concurrently. It must outlive every context created from it.
 *  - A kiln_context is not thread-safe: use each context from one thread at a time (create one
 *    context per thread, or per inference in flight, for concurrent inference).
 *  - A kiln_event may be waited on and released from any thread.
 *  - kiln_device_count / kiln_device_name / kiln_version / kiln_status_string may be called from
 *    any thread.
 */
#ifndef KILN_KILN_H_
#define KILN_KILN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

typedef enum kiln_status {
  KILN_OK = 0,
  KILN_ERROR_INVALID_ARGUMENT = 1, /* wrong name, shape, dtype, size or NULL pointer */
  KILN_ERROR_INVALID_PLAN = 2,     /* plan truncated, corrupted or from an incompatible writer */
  KILN_ERROR_INVALID_MODEL = 3,    /* (compiler) malformed ONNX model */
  KILN_ERROR_UNSUPPORTED = 4,      /* op, dtype or capability not available */
  KILN_ERROR_NOT_FOUND = 5,        /* file, tensor or device does not exist */
  KILN_ERROR_DEVICE = 6,           /* OpenCL or CLBlast reported an error */
  KILN_ERROR_OUT_OF_MEMORY = 7,    /* host or device allocation failed */
  KILN_ERROR_IO = 8,               /* reading or writing a file failed */
  KILN_ERROR_INTERNAL = 9          /* a bug in kiln; please report it */
} kiln_status;

/* Element types; the values are ONNX TensorProto.DataType codes. */
typedef enum kiln_dtype {
  KILN_DTYPE_FLOAT32 = 1,
  KILN_DTYPE_UINT8 = 2,
  KILN_DTYPE_INT8 = 3,
  KILN_DTYPE_INT32 = 6,
  KILN_DTYPE_INT64 = 7,
  KILN_DTYPE_BOOL = 9,
  KILN_DTYPE_FLOAT16 = 10,
  KILN_DTYPE_FLOAT64 = 11
} kiln_dtype;

#define KILN_MAX_RANK 16

typedef struct kiln_tensor_info {
  const char* name; /* owned by the plan */
  int32_t dtype;    /* a kiln_dtype value */
  int32_t rank;
  int64_t dims[KILN_MAX_RANK];
  size_t size_bytes; /* bytes of a dense C-order buffer holding the tensor */
} kiln_tensor_info;

typedef struct kiln_plan kiln_plan;
typedef struct kiln_context kiln_context;
typedef struct kiln_event kiln_event;

/* ---- library ---- */
KILN_API const char* kiln_version(void);
/* Static name of a status code ("invalid plan", ...). */
KILN_API const char* kiln_status_string(kiln_status status);
/* Detailed message of the calling thread's last failed kiln call ("" if none). */
KILN_API const char* kiln_last_error(void);

/* ---- devices ----
 * Device specs, as on the command line: "cpu", "opencl" (= opencl:0), "opencl:N", "auto"
 * (an OpenCL GPU, else any OpenCL device, else cpu). NULL or "" means "auto". */
KILN_API int32_t kiln_device_count(void); /* number of OpenCL devices (opencl:0..count-1) */
/* Name of OpenCL device `index`; NULL when out of range. Owned by the library. */
KILN_API const char* kiln_device_name(int32_t index);

/* ---- plans ---- */
/* Loads and verifies a plan file. On success *out is owned by the caller. */
KILN_API kiln_status kiln_plan_load_file(const char* path, kiln_plan** out);
/* Same, refusing a plan file whose content differs from the one a deployment pinned:
 * `expect_sha256` is the SHA-256 of the file's bytes as 64 hex digits (`kiln inspect` and
 * `kiln build` print it); NULL or "" pins nothing. A mismatch is KILN_ERROR_INVALID_PLAN. */
KILN_API kiln_status kiln_plan_load_file_pinned(const char* path, const char* expect_sha256, kiln_plan** out);
/* Same, from memory. The bytes are copied: the caller may free `data` afterwards. */
KILN_API kiln_status kiln_plan_load_memory(const void* data, size_t size, kiln_plan** out);
KILN_API kiln_status kiln_plan_release(kiln_plan* plan);

KILN_API int32_t kiln_plan_num_inputs(const kiln_plan* plan);
KILN_API int32_t kiln_plan_num_outputs(const kiln_plan* plan);
/* Fills *info for input/output `index`; KILN_ERROR_INVALID_ARGUMENT when out of range. */
KILN_API kiln_status kiln_plan_input_info(const kiln_plan* plan, int32_t index, kiln_tensor_info* info);
KILN_API kiln_status kiln_plan_output_info(const kiln_plan* plan, int32_t index, kiln_tensor_info* info);
/* Shape range of input `index`: min_dims and max_dims (KILN_MAX_RANK entries each) receive its
 * smallest and largest dims. Equal for a static plan; a plan built with --min-shapes/--max-shapes
 * runs any shape in between (kiln_context_set_input_shape). kiln_plan_input_info and
 * kiln_plan_output_info report the max shapes. */
KILN_API kiln_status kiln_plan_input_range(const kiln_plan* plan, int32_t index, int64_t* min_dims, int64_t* max_dims);
/* Name of the device the plan was built for (owned by the plan). */
KILN_API const char* kiln_plan_target_device(const kiln_plan* plan);

/* ---- execution contexts ---- */
/* Opens `device` (see above) for running `plan`. Weights are uploaded here, not per run. If the
 * device is not the one the plan was built for but has every capability the plan needs, the
 * context is created and a note is written to stderr; a missing capability is
 * KILN_ERROR_UNSUPPORTED naming it. */
KILN_API kiln_status kiln_context_create(const kiln_plan* plan, const char* device, kiln_context** out);
/* Waits for the context's enqueued inferences, then frees it. */
KILN_API kiln_status kiln_context_release(kiln_context* ctx);
/* Threads the context's CPU nodes use per inference (oneDNN primitives, kiln's threaded loops
 * and GEMM), 1..1024. 0 restores the default: the CLI's --threads, else KILN_CPU_THREADS if
 * set, else the physical cores. Contexts inferring at the same time share the cores: each
 * inference takes at most cores / (inferences running) threads, at least one, so several
 * contexts do not oversubscribe the host (unless `threads` itself exceeds the cores). The same
 * setting as kiln_context_options_set_cpu_threads, for a context already created. Waits for the
 * context's enqueued inferences first; a count outside 0..1024 is KILN_ERROR_INVALID_ARGUMENT. */
KILN_API kiln_status kiln_context_set_threads(kiln_context* ctx, int32_t threads);

/* Dynamic plans: sets the shape of input `name` (dims within kiln_plan_input_range) and
 * recomputes every shape of the context; nothing is reallocated or recompiled for the plan
 * (an OpenCL kernel specialised on a layout may compile once per new layout). A dim outside the
 * range, or another rank, is KILN_ERROR_INVALID_ARGUMENT naming the dim and the range. Waits for
 * the context's enqueued inferences first. Outputs must then be (re)bound with the sizes that
 * kiln_context_output_info reports. */
KILN_API kiln_status kiln_context_set_input_shape(kiln_context* ctx, const char* name, const int64_t* dims,
                                                  int32_t rank);
/* Input/output `index` at the context's current shapes (the max shapes until reshaped). */
KILN_API kiln_status kiln_context_input_info(const kiln_context* ctx, int32_t index, kiln_tensor_info* info);
KILN_API kiln_status kiln_context_output_info(const kiln_context* ctx, int32_t index, kiln_tensor_info* info);
/* Binds caller memory for input `name`: `dtype` must equal the plan's input, `rank` and `dims`
 * the context's current shape of it, or, for a dynamic plan, another shape in its range (the
 * context is then reshaped as by kiln_context_set_input_shape); no implicit casts. `size_bytes`
 * must equal its size. The memory is borrowed, not copied: it must stay valid and unchanged
 * until the next kiln_context_run returns. Rebinding replaces the previous binding. */
KILN_API kiln_status kiln_context_bind_input(kiln_context* ctx, const char* name, int32_t dtype,
                                             const int64_t* dims, int32_t rank, const void* data,
                                             size_t size_bytes);
/* Binds caller memory that kiln_context_run fills with output `name`; `size_bytes` must equal
 * the output's size at the context's current shapes. Borrowed like inputs. */
KILN_API kiln_status kiln_context_bind_output(kiln_context* ctx, const char* name, void* data,
                                              size_t size_bytes);
/* Runs one inference synchronously: every input and output must be bound. On failure the
 * context stays usable. Waits for inferences enqueued earlier on the context first. */
KILN_API kiln_status kiln_context_run(kiln_context* ctx);
/* ---- asynchronous inference ----
 * kiln_enqueue starts one inference on the context's worker thread and returns at once. Inferences
 * enqueued on one context run in submission order (a context holds one set of activations);
 * inferences on different contexts of the same plan run concurrently, sharing the plan's
 * weights, so create one context per inference you want in flight. The bound buffers must stay
 * valid and unchanged until the inference's event completes. */
/* Starts an inference. On success *event (if event is not NULL) is owned by the caller and must
 * be released with kiln_event_release, before or after it completes. */
KILN_API kiln_status kiln_enqueue(kiln_context* ctx, kiln_event** event);
/* Blocks until the inference completes and returns its status; kiln_last_error() then holds
 * its message. May be called several times and from any thread. */
KILN_API kiln_status kiln_wait(kiln_event* event);
/* Non-blocking: 1 if the inference has completed, else 0. */
KILN_API int32_t kiln_event_is_done(kiln_event* event);
/* Calls callback(status, message, user) once the inference completes: on a kiln worker thread,
 * or at once on the calling thread if it already has. The callback must not block, wait on or
 * release the context that runs the inference. `message` is valid during the call only. */
KILN_API kiln_status kiln_event_set_callback(kiln_event* event,
                                             void (*callback)(kiln_status status, const char* message, void* user),
                                             void* user);
KILN_API kiln_status kiln_event_release(kiln_event* event);

/* Label of the device the context runs on, e.g. "opencl:0 (pthread-...)"; owned by ctx. */
KILN_API const char* kiln_context_device(const kiln_context* ctx);

/* ---- fast transfers ---- */
/* Host memory for input or output `name`, owned by ctx and valid until it is released, of the
 * tensor's largest size (*size_bytes): page-locked on OpenCL devices, so that binding it with
 * kiln_context_bind_input / _bind_output moves the tensor at DMA speed (on the NVIDIA GPU machine
 * 55 GB/s against 4-9 GB/s from ordinary memory). Write the input there, or read the output. */
KILN_API kiln_status kiln_context_host_buffer(kiln_context* ctx, const char* name, void** data, size_t* size_bytes);
/* Device-resident tensors, so that a pipeline of plans never leaves the device (OpenCL contexts
 * only; a `cl_mem` here is an OpenCL cl_mem handle):
 * kiln_context_output_device: output `name` is left on the device: *cl_mem (owned by ctx) holds
 * it once a run completes, until the context's next run starts. Nothing is downloaded for it;
 * kiln_context_bind_output undoes it.
 * kiln_context_bind_input_device: input `name` is read from `cl_mem`, a buffer of at least the
 * input's size made in kiln's OpenCL context on this device (such as another context's
 * kiln_context_output_device buffer); retained until rebound. Nothing is uploaded for it; an
 * input a cpu-backend node reads is refused; kiln_context_bind_input undoes it. */
KILN_API kiln_status kiln_context_output_device(kiln_context* ctx, const char* name, void** cl_mem);
KILN_API kiln_status kiln_context_bind_input_device(kiln_context* ctx, const char* name, void* cl_mem);

/* ---- context options, profile records, the plan's inspect view (for the Python package) ---- */
typedef struct kiln_context_options kiln_context_options;
KILN_API kiln_status kiln_context_options_create(kiln_context_options** out);
KILN_API void kiln_context_options_release(kiln_context_options* opts);
/* Device spec as for kiln_context_create (NULL or "": auto). */
KILN_API kiln_status kiln_context_options_set_device(kiln_context_options* opts, const char* device);
/* The context's CPU threads per inference at creation (intra-op parallelism; 1..1024; 0, the
 * default: the process default), as kiln_context_set_threads sets them later. */
KILN_API kiln_status kiln_context_options_set_cpu_threads(kiln_context_options* opts, int32_t threads);
/* 1: every run of the context records per-node and per-transfer timings (kiln_context_profile_*). */
KILN_API kiln_status kiln_context_options_set_profiling(kiln_context_options* opts, int32_t enabled);
/* kiln_context_create with options (NULL: the defaults). A device note, if any, goes to stderr. */
KILN_API kiln_status kiln_context_create_with_options(const kiln_plan* plan, const kiln_context_options* opts,
                                                      kiln_context** out);

typedef enum kiln_profile_kind {
  KILN_PROFILE_NODE = 0,
  KILN_PROFILE_UPLOAD = 1,  /* host -> device copy of a tensor */
  KILN_PROFILE_DOWNLOAD = 2 /* device -> host */
} kiln_profile_kind;

typedef struct kiln_profile_record {
  int32_t kind;        /* a kiln_profile_kind */
  int32_t run;         /* which profiled run (0-based) since profiling started or was cleared */
  int32_t node;        /* plan node index (NODE), else -1 */
  const char* name;    /* node name or transferred tensor name; owned by the plan */
  const char* op;      /* node op ("" for transfers); owned by the plan */
  const char* backend; /* "cpu", "opencl", or "cpu-ref": a cpu node with a oneDNN kernel that ran
                          kiln's reference kernel instead (no primitive there, or a NaN/Inf
                          input its fused activation would drop); static */
  int64_t start_ns, end_ns; /* host steady clock; device work mapped onto it */
  int64_t host_ns;     /* host time spent issuing the work */
  double flops;        /* estimated floating-point operations of the node at the shapes that ran */
  uint64_t bytes;      /* bytes the node reads and writes, or the transfer moves */
} kiln_profile_record;

/* Records of the context's completed profiled runs (a context created with profiling). Call
 * between runs (none in flight). */
KILN_API int32_t kiln_context_profile_count(const kiln_context* ctx);
KILN_API kiln_status kiln_context_profile_record(const kiln_context* ctx, int32_t index, kiln_profile_record* rec);
KILN_API kiln_status kiln_context_profile_clear(kiln_context* ctx);

/* The plan as `kiln inspect` shows it, as a JSON document: format and writer version, model,
 * target device, required capabilities, weight bytes, peak activation memory, dynamic dims,
 * inputs and outputs (name, dtype, shape, min/max shape), segments, and every node (name, op,
 * backend, kernel, variant, precision, input and output tensors, attributes, the indices of its
 * control-flow subgraphs, fused ONNX nodes), then the subgraphs (inputs, captures, outputs, nodes).
 * snprintf-style: writes at most `capacity` bytes (NUL included) to `buffer` (may be NULL when
 * capacity is 0) and sets *needed to the full length plus one. */
KILN_API kiln_status kiln_plan_inspect_json(const kiln_plan* plan, char* buffer, size_t capacity, size_t* needed);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H_ */
