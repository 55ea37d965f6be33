/* The embedding example: a plain C program that uses only the installed kiln runtime
 * (include/kiln/kiln.h, libkiln_runtime). It loads the plan named on its command line, fills
 * every input with ones, runs once on the default device (or argv[2]), and prints each
 * output's name and its first 8 values.
 *
 *   cc run_plan.c $(pkg-config --cflags --libs kiln) -o run_plan && ./run_plan model.plan
 */
#include <kiln/kiln.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check(kiln_status s, const char* what) {
  if (s == KILN_OK) return 0;
  fprintf(stderr, "run_plan: %s: %s: %s\n", what, kiln_status_string(s), kiln_last_error());
  return 1;
}

/* Writes the value 1 in `dtype` to every element of `buf`. */
static int fill_ones(void* buf, int32_t dtype, size_t count) {
  size_t i;
  for (i = 0; i < count; ++i) {
    switch (dtype) {
      case KILN_DTYPE_FLOAT32: ((float*)buf)[i] = 1.0f; break;
      case KILN_DTYPE_FLOAT64: ((double*)buf)[i] = 1.0; break;
      case KILN_DTYPE_INT64: ((int64_t*)buf)[i] = 1; break;
      case KILN_DTYPE_INT32: ((int32_t*)buf)[i] = 1; break;
      case KILN_DTYPE_INT8: case KILN_DTYPE_UINT8: case KILN_DTYPE_BOOL: ((uint8_t*)buf)[i] = 1; break;
      default: return 1;
    }
  }
  return 0;
}

static double value_at(const void* buf, int32_t dtype, size_t i) {
  switch (dtype) {
    case KILN_DTYPE_FLOAT32: return ((const float*)buf)[i];
    case KILN_DTYPE_FLOAT64: return ((const double*)buf)[i];
    case KILN_DTYPE_INT64: return (double)((const int64_t*)buf)[i];
    case KILN_DTYPE_INT32: return ((const int32_t*)buf)[i];
    case KILN_DTYPE_INT8: return ((const int8_t*)buf)[i];
    default: return ((const uint8_t*)buf)[i];
  }
}

static size_t element_count(const kiln_tensor_info* info) {
  size_t n = 1;
  int32_t d;
  for (d = 0; d < info->rank; ++d) n *= (size_t)info->dims[d];
  return n;
}

int main(int argc, char** argv) {
  kiln_plan* plan = NULL;
  kiln_context* ctx = NULL;
  void** inputs = NULL;
  void** outputs = NULL;
  int32_t i, n_in, n_out;
  int rc = 1;
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: run_plan PLAN [DEVICE]\n");
    return 2;
  }
  if (check(kiln_plan_load_file(argv[1], &plan), "loading the plan")) return 1;
  if (check(kiln_context_create(plan, argc > 2 ? argv[2] : NULL, &ctx), "opening the device")) goto done;
  n_in = kiln_plan_num_inputs(plan);
  n_out = kiln_plan_num_outputs(plan);
  inputs = calloc((size_t)n_in + 1, sizeof(void*));
  outputs = calloc((size_t)n_out + 1, sizeof(void*));
  if (!inputs || !outputs) goto done;
  for (i = 0; i < n_in; ++i) {
    kiln_tensor_info info;
    if (check(kiln_plan_input_info(plan, i, &info), "input info")) goto done;
    inputs[i] = malloc(info.size_bytes ? info.size_bytes : 1);
    if (!inputs[i] || fill_ones(inputs[i], info.dtype, element_count(&info))) {
      fprintf(stderr, "run_plan: input %s: unsupported dtype %d\n", info.name, info.dtype);
      goto done;
    }
    if (check(kiln_context_bind_input(ctx, info.name, info.dtype, info.dims, info.rank, inputs[i], info.size_bytes),
              info.name))
      goto done;
  }
  for (i = 0; i < n_out; ++i) {
    kiln_tensor_info info;
    if (check(kiln_plan_output_info(plan, i, &info), "output info")) goto done;
    outputs[i] = malloc(info.size_bytes ? info.size_bytes : 1);
    if (!outputs[i] || check(kiln_context_bind_output(ctx, info.name, outputs[i], info.size_bytes), info.name))
      goto done;
  }
  if (check(kiln_context_run(ctx), "running")) goto done;
  for (i = 0; i < n_out; ++i) {
    kiln_tensor_info info;
    size_t j, n;
    kiln_plan_output_info(plan, i, &info);
    n = element_count(&info);
    printf("%s:", info.name);
    for (j = 0; j < n && j < 8; ++j) printf(" %.6g", value_at(outputs[i], info.dtype, j));
    printf("\n");
  }
  rc = 0;
done:
  if (inputs)
    for (i = 0; inputs[i]; ++i) free(inputs[i]);
  if (outputs)
    for (i = 0; outputs[i]; ++i) free(outputs[i]);
  free(inputs);
  free(outputs);
  kiln_context_release(ctx);
  kiln_plan_release(plan);
  return rc;
}
