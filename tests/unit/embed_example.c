/* Embedding kiln from C: the README's example, built against libkiln_runtime.so alone (the
 * layering test runs it). Loads a plan, fills every input with a byte pattern, runs once and
 * prints each output's shape and first bytes.
 *
 *   kiln_embed_example PLAN [DEVICE]
 */
#include <stdio.h>
#include <stdlib.h>

#include "kiln/kiln.h"

static int fail(const char* what, kiln_status s) {
  fprintf(stderr, "%s: %s: %s\n", what, kiln_status_string(s), kiln_last_error());
  return 1;
}

int main(int argc, char** argv) {
  kiln_plan* plan = NULL;
  kiln_context* ctx = NULL;
  kiln_status s;
  void* buffers[64] = {0};
  int nbuf = 0, rc = 1, i;
  size_t b;
  if (argc < 2) {
    fprintf(stderr, "usage: %s PLAN [DEVICE]\n", argv[0]);
    return 2;
  }
  if ((s = kiln_plan_load_file(argv[1], &plan)) != KILN_OK) return fail("load", s);
  if ((s = kiln_context_create(plan, argc > 2 ? argv[2] : "auto", &ctx)) != KILN_OK) {
    rc = fail("context", s);
    goto done;
  }
  for (i = 0; i < kiln_plan_num_inputs(plan) && nbuf < 64; ++i) {
    kiln_tensor_info in;
    unsigned char* data;
    kiln_plan_input_info(plan, i, &in);
    data = malloc(in.size_bytes ? in.size_bytes : 1);
    buffers[nbuf++] = data;
    for (b = 0; b < in.size_bytes; ++b) data[b] = (unsigned char)(b % 7);
    s = kiln_context_bind_input(ctx, in.name, in.dtype, in.dims, in.rank, data, in.size_bytes);
    if (s != KILN_OK) {
      rc = fail("bind input", s);
      goto done;
    }
  }
  for (i = 0; i < kiln_plan_num_outputs(plan) && nbuf < 64; ++i) {
    kiln_tensor_info out;
    kiln_plan_output_info(plan, i, &out);
    buffers[nbuf] = calloc(out.size_bytes ? out.size_bytes : 1, 1);
    s = kiln_context_bind_output(ctx, out.name, buffers[nbuf++], out.size_bytes);
    if (s != KILN_OK) {
      rc = fail("bind output", s);
      goto done;
    }
  }
  if ((s = kiln_context_run(ctx)) != KILN_OK) {
    rc = fail("run", s);
    goto done;
  }
  for (i = 0; i < kiln_plan_num_outputs(plan); ++i) {
    kiln_tensor_info out;
    const unsigned char* data = buffers[kiln_plan_num_inputs(plan) + i];
    int d;
    kiln_plan_output_info(plan, i, &out);
    printf("%s: dtype %d, dims [", out.name, out.dtype);
    for (d = 0; d < out.rank; ++d) printf("%s%lld", d ? ", " : "", (long long)out.dims[d]);
    printf("], %zu bytes, first bytes", out.size_bytes);
    for (b = 0; b < out.size_bytes && b < 8; ++b) printf(" %u", data[b]);
    printf("\n");
  }
  printf("ran on %s with kiln %s\n", kiln_context_device(ctx), kiln_version());
  rc = 0;
done:
  kiln_context_release(ctx);
  kiln_plan_release(plan);
  for (i = 0; i < nbuf; ++i) free(buffers[i]);
  return rc;
}
