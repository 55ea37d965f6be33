// Times ResNet-18's (and a smaller ResNet's) 3x3 convolutions (FP32, ReLU post-op, 1 s each) as oneDNN runs them with the
// activations in channels-last (what kiln's cpu device uses) and in the blocked nChw16c layout,
// and asks for Winograd (its own layouts, reached from and back to channels-last in the timing). Builds against oneDNN 2.x (Debian's libdnnl-dev) or 3.x (e.g. PyPI's
// onednn-devel-cpu-gomp); perf/results/2026-12-08-cpu-conv-layouts.md has the commands.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_map>

#include <dnnl.hpp>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

struct Layer {
  int n, c, h, k, stride;
};

convolution_forward::primitive_desc make_pd(const engine& eng, algorithm algo, const memory::desc& src,
                                            const memory::desc& wei, const memory::desc& bias,
                                            const memory::desc& dst, int stride) {
  post_ops po;
  primitive_attr attr;
#if DNNL_VERSION_MAJOR >= 3
  po.append_eltwise(algorithm::eltwise_relu, 0.f, 0.f);
  attr.set_post_ops(po);
  return convolution_forward::primitive_desc(eng, prop_kind::forward_inference, algo, src, wei, bias, dst,
                                             {stride, stride}, {1, 1}, {1, 1}, attr);
#else
  po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
  attr.set_post_ops(po);
  convolution_forward::desc d(prop_kind::forward_inference, algo, src, wei, bias, dst, {stride, stride}, {1, 1},
                              {1, 1});
  return convolution_forward::primitive_desc(d, attr, eng);
#endif
}

void time_one(engine& eng, stream& s, const Layer& l, algorithm algo, tag layout, const char* label) {
  const int oh = (l.h + 2 - 3) / l.stride + 1;
  const memory::desc src({l.n, l.c, l.h, l.h}, dt::f32, layout), dst({l.n, l.k, oh, oh}, dt::f32, layout);
  const memory::desc wei({l.k, l.c, 3, 3}, dt::f32, tag::any), bias({l.k}, dt::f32, tag::x);
  convolution_forward::primitive_desc pd;
  try {
    pd = make_pd(eng, algo, src, wei, bias, dst, l.stride);
  } catch (const dnnl::error&) {
    std::printf("  %-18s not available\n", label);
    return;
  }
  memory sm(pd.src_desc(), eng), wm(pd.weights_desc(), eng), bm(pd.bias_desc(), eng), dm(pd.dst_desc(), eng);
  // Fresh buffers may hold a freed one's leftovers: denormals there slow a convolution 100x.
  for (memory* m : {&sm, &wm, &bm, &dm}) {
    float* p = static_cast<float*>(m->get_data_handle());
    for (size_t i = 0; i < m->get_desc().get_size() / sizeof(float); ++i) p[i] = 0.01f * static_cast<float>(i % 97);
  }
  const convolution_forward conv(pd);
  const std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_BIAS, bm}, {DNNL_ARG_DST, dm}};
  // A layout the primitive chose (tag::any) is reached from channels-last and back, as kiln would.
  const memory::desc nhwc_src({l.n, l.c, l.h, l.h}, dt::f32, tag::nhwc), nhwc_dst({l.n, l.k, oh, oh}, dt::f32, tag::nhwc);
  memory user_src(nhwc_src, eng), user_dst(nhwc_dst, eng);
  std::fill_n(static_cast<float*>(user_src.get_data_handle()), nhwc_src.get_size() / sizeof(float), 0.5f);
  const bool reorder_src = layout == tag::any && pd.src_desc() != nhwc_src;
  const bool reorder_dst = layout == tag::any && pd.dst_desc() != nhwc_dst;
  const reorder to_src = reorder_src ? reorder(user_src, sm) : reorder();
  const reorder from_dst = reorder_dst ? reorder(dm, user_dst) : reorder();
  auto once = [&] {
    if (reorder_src) to_src.execute(s, user_src, sm);
    conv.execute(s, args);
    if (reorder_dst) from_dst.execute(s, dm, user_dst);
    s.wait();
  };
  for (int i = 0; i < 5; ++i) once();
  int iters = 0;
  double elapsed = 0;
  const auto t0 = std::chrono::steady_clock::now();
  do {
    once();
    ++iters;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < 1.0);
  const double ms = elapsed / iters * 1e3, flops = 2.0 * l.n * l.k * oh * oh * l.c * 9;
  std::printf("  %-18s %9.3f ms %6.0f GFLOP/s  %s\n", label, ms, flops / ms / 1e6, pd.impl_info_str());
}

}  // namespace

int main() {
  engine eng(engine::kind::cpu, 0);
  stream s(eng);
  const dnnl_version_t* v = dnnl_version();
  std::printf("oneDNN %d.%d.%d\n", v->major, v->minor, v->patch);
  // ResNet-18's at batch 1 and 32, then perf/models' resnet_mini's (64x64 input).
  const Layer layers[] = {{1, 64, 56, 64, 1},  {1, 128, 28, 128, 1}, {1, 256, 14, 256, 1}, {1, 512, 7, 512, 1},
                          {1, 64, 56, 128, 2}, {32, 64, 56, 64, 1},  {32, 256, 14, 256, 1}, {32, 512, 7, 512, 1},
                          {1, 32, 64, 32, 1},  {1, 64, 32, 64, 1},   {1, 128, 16, 128, 1}, {1, 3, 64, 32, 1}};
  for (const Layer& l : layers) {
    std::printf("N%d C%d %dx%d -> K%d stride %d\n", l.n, l.c, l.h, l.h, l.k, l.stride);
    time_one(eng, s, l, algorithm::convolution_direct, tag::nhwc, "direct nhwc");
    time_one(eng, s, l, algorithm::convolution_direct, tag::nChw16c, "direct nChw16c");
    time_one(eng, s, l, algorithm::convolution_winograd, tag::any, "winograd+reorders");
  }
}
