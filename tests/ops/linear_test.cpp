// Conv, ConvTranspose, Gemm, MatMul: the CPU kernels against naive direct loops written here,
// and OpenCL against CPU, on random shapes and attributes.
#include <algorithm>
#include <cmath>

#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

// ---------------------------------------------------------------- naive references

struct ConvAttrs {
  int64_t group = 1;
  std::vector<int64_t> strides, dilations, pads;  // pads: begins then ends
};

Attributes to_attrs(const ConvAttrs& c) {
  Attributes a;
  a.set("group", c.group);
  a.set("strides", c.strides);
  a.set("dilations", c.dilations);
  a.set("pads", c.pads);
  return a;
}

// Multi-index helpers over a row-major shape.
bool next_index(std::vector<int64_t>& idx, const Shape& s) {
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    if (++idx[d] < s[d]) return true;
    idx[d] = 0;
  }
  return false;
}
int64_t flat(const std::vector<int64_t>& idx, const Shape& s) {
  int64_t f = 0;
  for (size_t d = 0; d < s.size(); ++d) f = f * s[d] + idx[d];
  return f;
}

HostTensor naive_conv(const HostTensor& x, const HostTensor& w, const HostTensor* b, const ConvAttrs& c) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  const size_t sp = xs.size() - 2;
  Shape ys = {xs[0], ws[0]};
  for (size_t i = 0; i < sp; ++i) {
    const int64_t dk = (ws[2 + i] - 1) * c.dilations[i] + 1;
    ys.push_back((xs[2 + i] + c.pads[i] + c.pads[i + sp] - dk) / c.strides[i] + 1);
  }
  HostTensor y(DType::kFloat32, ys);
  const int64_t Cg = ws[1], Mg = ws[0] / c.group;
  std::vector<int64_t> yi(ys.size(), 0);
  do {
    const int64_t n = yi[0], m = yi[1], g = m / Mg;
    double acc = b ? b->as<float>()[m] : 0.0;
    Shape kshape(ws.begin() + 2, ws.end());
    for (int64_t cc = 0; cc < Cg; ++cc) {
      std::vector<int64_t> k(sp, 0);
      do {
        std::vector<int64_t> xi = {n, g * Cg + cc};
        bool inside = true;
        for (size_t d = 0; d < sp; ++d) {
          const int64_t p = yi[2 + d] * c.strides[d] - c.pads[d] + k[d] * c.dilations[d];
          inside &= p >= 0 && p < xs[2 + d];
          xi.push_back(p);
        }
        if (!inside) continue;
        std::vector<int64_t> wi = {m, cc};
        wi.insert(wi.end(), k.begin(), k.end());
        acc += double(x.as<float>()[flat(xi, xs)]) * w.as<float>()[flat(wi, ws)];
      } while (next_index(k, kshape));
    }
    y.as<float>()[flat(yi, ys)] = static_cast<float>(acc);
  } while (next_index(yi, ys));
  return y;
}

// Scatter form, straight from the definition: each input element times each tap lands at
// in * stride - pad_begin + k * dilation.
HostTensor naive_conv_transpose(const HostTensor& x, const HostTensor& w, const HostTensor* b, const ConvAttrs& c,
                                const std::vector<int64_t>& out_pad) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  const size_t sp = xs.size() - 2;
  const int64_t Mg = ws[1], M = Mg * c.group, Cg = xs[1] / c.group;
  Shape ys = {xs[0], M};
  for (size_t i = 0; i < sp; ++i)
    ys.push_back(c.strides[i] * (xs[2 + i] - 1) + out_pad[i] + (ws[2 + i] - 1) * c.dilations[i] + 1 - c.pads[i] -
                 c.pads[i + sp]);
  for (int64_t d : ys)
    if (d <= 0) return HostTensor();  // the caller skips shapes with no output
  HostTensor y(DType::kFloat32, ys);
  std::vector<int64_t> yi(ys.size(), 0);
  do y.as<float>()[flat(yi, ys)] = b ? b->as<float>()[yi[1]] : 0.f;
  while (next_index(yi, ys));
  std::vector<int64_t> xi(xs.size(), 0);
  Shape kshape(ws.begin() + 2, ws.end());
  do {
    const int64_t n = xi[0], ci = xi[1], g = ci / Cg;
    for (int64_t mg = 0; mg < Mg; ++mg) {
      std::vector<int64_t> k(sp, 0);
      do {
        std::vector<int64_t> oi = {n, g * Mg + mg};
        bool inside = true;
        for (size_t d = 0; d < sp; ++d) {
          const int64_t o = xi[2 + d] * c.strides[d] - c.pads[d] + k[d] * c.dilations[d];
          inside &= o >= 0 && o < ys[2 + d];
          oi.push_back(o);
        }
        if (!inside) continue;
        std::vector<int64_t> wi = {ci, mg};
        wi.insert(wi.end(), k.begin(), k.end());
        y.as<float>()[flat(oi, ys)] += x.as<float>()[flat(xi, xs)] * w.as<float>()[flat(wi, ws)];
      } while (next_index(k, kshape));
    }
  } while (next_index(xi, xs));
  return y;
}

HostTensor naive_gemm(const HostTensor& a, const HostTensor& b, const HostTensor* c, bool ta, bool tb, float alpha,
                      float beta) {
  const int64_t M = ta ? a.shape()[1] : a.shape()[0], K = ta ? a.shape()[0] : a.shape()[1];
  const int64_t N = tb ? b.shape()[0] : b.shape()[1];
  HostTensor y(DType::kFloat32, {M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(a.as<float>()[ta ? k * M + i : i * K + k]) * b.as<float>()[tb ? j * K + k : k * N + j];
      double v = alpha * acc;
      if (c) {
        Shape cs = c->shape();
        while (cs.size() < 2) cs.insert(cs.begin(), 1);
        v += beta * c->as<float>()[(cs[0] == 1 ? 0 : i) * cs[1] + (cs[1] == 1 ? 0 : j)];
      }
      y.as<float>()[i * N + j] = static_cast<float>(v);
    }
  return y;
}

HostTensor naive_matmul(const HostTensor& a, const HostTensor& b) {
  Shape as = a.shape(), bs = b.shape();
  const bool a1 = as.size() == 1, b1 = bs.size() == 1;
  if (a1) as.insert(as.begin(), 1);
  if (b1) bs.push_back(1);
  const int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  const size_t rank = std::max(as.size(), bs.size());
  while (as.size() < rank) as.insert(as.begin(), 1);
  while (bs.size() < rank) bs.insert(bs.begin(), 1);
  Shape batch;
  for (size_t d = 0; d + 2 < rank; ++d) batch.push_back(std::max(as[d], bs[d]));
  Shape ys = batch;
  ys.push_back(M);
  ys.push_back(N);
  HostTensor y(DType::kFloat32, ys);
  std::vector<int64_t> bi(batch.size(), 0);
  int64_t out_b = 0;
  do {
    int64_t ao = 0, bo = 0;
    for (size_t d = 0; d < batch.size(); ++d) {
      ao = ao * as[d] + (as[d] == 1 ? 0 : bi[d]);
      bo = bo * bs[d] + (bs[d] == 1 ? 0 : bi[d]);
    }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += double(a.as<float>()[ao * M * K + i * K + k]) * b.as<float>()[bo * K * N + k * N + j];
        y.as<float>()[(out_b * M + i) * N + j] = static_cast<float>(acc);
      }
    ++out_b;
  } while (!batch.empty() && next_index(bi, batch));
  Shape final_shape = batch;
  if (!a1) final_shape.push_back(M);
  if (!b1) final_shape.push_back(N);
  y.reshape(final_shape);
  return y;
}

// ---------------------------------------------------------------- helpers

::testing::AssertionResult cpu_matches(const OpSpec& s, const HostTensor& want, double rtol = 1e-4,
                                       double atol = 1e-4) {
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  if (!st) return ::testing::AssertionFailure() << st.message();
  return tensors_close(out[0], want, rtol, atol);
}

int rnd(std::mt19937& rng, int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

// ---------------------------------------------------------------- Conv

TEST(LinearOps, ConvRandomMatchesNaiveAndOpenCL) {
  std::mt19937 rng(11);
  for (int iter = 0; iter < 24; ++iter) {
    const int sp = 1 + iter % 3;
    ConvAttrs c;
    c.group = rnd(rng, 0, 2) == 0 ? rnd(rng, 1, 3) : 1;
    const int64_t Cg = rnd(rng, 1, 4), Mg = rnd(rng, 1, iter % 4 == 0 ? 20 : 4);
    Shape xs = {rnd(rng, 1, 2), c.group * Cg}, ws = {c.group * Mg, Cg};
    for (int i = 0; i < sp; ++i) {
      const int64_t k = rnd(rng, 1, 3), d = rnd(rng, 1, 2), s = rnd(rng, 1, 3);
      ws.push_back(k);
      c.dilations.push_back(d);
      c.strides.push_back(s);
      xs.push_back((k - 1) * d + 1 + rnd(rng, 0, sp == 3 ? 3 : 7));
    }
    for (int i = 0; i < 2 * sp; ++i) c.pads.push_back(rnd(rng, 0, 2));
    const bool bias = rnd(rng, 0, 1);
    OpSpec s{"Conv", 11, to_attrs(c),
             {random_tensor(DType::kFloat32, xs, rng), random_tensor(DType::kFloat32, ws, rng)}, {false, true}};
    if (bias) {
      s.inputs.push_back(random_tensor(DType::kFloat32, {ws[0]}, rng));
      s.constant.push_back(true);
    }
    const HostTensor want = naive_conv(s.inputs[0], s.inputs[1], bias ? &s.inputs[2] : nullptr, c);
    SCOPED_TRACE("iter " + std::to_string(iter) + " x " + shape_str(xs) + " w " + shape_str(ws) + " attrs " +
                 s.attrs.to_string());
    EXPECT_TRUE(cpu_matches(s, want));
    if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
  }
}

TEST(LinearOps, ConvGemmPathsOnOpenCL) {
  // Shapes that take the im2col + GEMM path and the pointwise (1x1) path, with groups, and
  // depthwise convolutions.
  std::mt19937 rng(12);
  struct Case { Shape x, w; int64_t group; int64_t stride, pad; };
  const Case cases[] = {{{2, 8, 11, 13}, {32, 8, 3, 3}, 1, 1, 1},
                        {{1, 16, 9, 9}, {32, 8, 3, 3}, 2, 2, 1},
                        {{2, 24, 7, 5}, {48, 24, 1, 1}, 1, 1, 0},
                        {{1, 32, 6, 6}, {64, 8, 1, 1}, 4, 1, 0},
                        {{1, 4, 20}, {70, 4, 5}, 1, 1, 2},
                        // depthwise (the CPU's direct path), 2-D and 1-D, strided
                        {{2, 6, 9, 8}, {6, 1, 3, 3}, 6, 2, 1},
                        {{1, 5, 17}, {5, 1, 4}, 5, 1, 2},
                        {{1, 3, 12, 11}, {3, 1, 5, 5}, 3, 3, 2}};
  for (const Case& k : cases) {
    ConvAttrs c;
    c.group = k.group;
    const size_t sp = k.x.size() - 2;
    c.strides.assign(sp, k.stride);
    c.dilations.assign(sp, 1);
    c.pads.assign(2 * sp, k.pad);
    OpSpec s{"Conv", 11, to_attrs(c),
             {random_tensor(DType::kFloat32, k.x, rng), random_tensor(DType::kFloat32, k.w, rng),
              random_tensor(DType::kFloat32, {k.w[0]}, rng)},
             {false, true, true}};
    SCOPED_TRACE("x " + shape_str(k.x) + " w " + shape_str(k.w));
    EXPECT_TRUE(cpu_matches(s, naive_conv(s.inputs[0], s.inputs[1], &s.inputs[2], c)));
    if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
  }
}

TEST(LinearOps, EveryGemmVariantMatchesCpu) {
  // The build records a GEMM variant per node (kiln's tiled kernel in each tile shape, CLBlast);
  // every one the device offers, and the portable path, must compute the same thing.
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(17);
  for (const char* precision : {"fp32", "fp16"}) {
    SCOPED_TRACE(precision);
    const double tol = std::string(precision) == "fp16" ? 2e-2 : 1e-4;
    ConvAttrs c;
    c.group = 2;
    c.strides = {1, 1};
    c.dilations = {1, 1};
    c.pads = {1, 1, 1, 1};
    OpSpec conv{"Conv", 11, to_attrs(c),
                {random_tensor(DType::kFloat32, {2, 8, 9, 7}, rng), random_tensor(DType::kFloat32, {40, 4, 3, 3}, rng),
                 random_tensor(DType::kFloat32, {40}, rng)},
                {false, true, true}};
    Attributes g;
    g.set("transB", int64_t{1});
    OpSpec gemm{"Gemm", 13, g,
                {random_tensor(DType::kFloat32, {70, 33}, rng), random_tensor(DType::kFloat32, {130, 33}, rng),
                 random_tensor(DType::kFloat32, {130}, rng)},
                {false, true, true}};
    OpSpec matmul{"MatMul", 13, {},
                  {random_tensor(DType::kFloat32, {3, 20, 48}, rng), random_tensor(DType::kFloat32, {3, 48, 36}, rng)},
                  {false, false}};
    for (OpSpec* s : {&conv, &gemm, &matmul}) {
      s->precision = precision;
      int runs = 0;
      EXPECT_TRUE(every_variant_matches_cpu(*s, tol, tol, &runs)) << s->op_type;
      EXPECT_GE(runs, 5) << s->op_type << ": three tiles, CLBlast and the portable path";
    }
  }
}

TEST(LinearOps, ConvAutoPadAndErrors) {
  std::mt19937 rng(13);
  OpSpec s{"Conv", 11, {}, {random_tensor(DType::kFloat32, {1, 2, 7, 8}, rng), random_tensor(DType::kFloat32, {3, 2, 4, 3}, rng)},
           {false, true}};
  s.attrs.set("auto_pad", std::string("SAME_LOWER"));
  s.attrs.set("strides", std::vector<int64_t>{2, 3});
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  EXPECT_EQ(out[0].shape(), (Shape{1, 3, 4, 3}));
  // SAME_LOWER: total pad (4-1)*2+4-7 = 3 -> begin 2, end 1; (3-1)*3+3-8 = 1 -> begin 1, end 0.
  ConvAttrs c{1, {2, 3}, {1, 1}, {2, 1, 1, 0}};
  EXPECT_TRUE(tensors_close(out[0], naive_conv(s.inputs[0], s.inputs[1], nullptr, c), 1e-4, 1e-5));
  if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s)); }

  OpSpec bad{"Conv", 11, {}, {random_tensor(DType::kFloat32, {1, 3, 5, 5}, rng), random_tensor(DType::kFloat32, {4, 2, 3, 3}, rng)},
             {false, true}};
  Status st = run_op(bad, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Conv_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("input channels"), std::string::npos) << st.message();
}

// ---------------------------------------------------------------- ConvTranspose

TEST(LinearOps, ConvTransposeRandomMatchesNaiveAndOpenCL) {
  std::mt19937 rng(21);
  for (int iter = 0; iter < 18; ++iter) {
    const int sp = 1 + iter % 3;
    ConvAttrs c;
    c.group = rnd(rng, 0, 2) == 0 ? 2 : 1;
    const int64_t Cg = rnd(rng, 1, 3), Mg = rnd(rng, 1, 3);
    Shape xs = {rnd(rng, 1, 2), c.group * Cg}, ws = {c.group * Cg, Mg};
    std::vector<int64_t> out_pad;
    for (int i = 0; i < sp; ++i) {
      const int64_t k = rnd(rng, 1, 3), d = rnd(rng, 1, 2), s = rnd(rng, 1, 3);
      ws.push_back(k);
      c.dilations.push_back(d);
      c.strides.push_back(s);
      xs.push_back(rnd(rng, 1, sp == 3 ? 3 : 6));
      out_pad.push_back(rnd(rng, 0, std::max(s, d) - 1));
    }
    for (int i = 0; i < 2 * sp; ++i) c.pads.push_back(rnd(rng, 0, 1));
    Attributes a = to_attrs(c);
    a.set("output_padding", out_pad);
    OpSpec s{"ConvTranspose", 11, a,
             {random_tensor(DType::kFloat32, xs, rng), random_tensor(DType::kFloat32, ws, rng),
              random_tensor(DType::kFloat32, {c.group * Mg}, rng)},
             {false, true, true}};
    const HostTensor want = naive_conv_transpose(s.inputs[0], s.inputs[1], &s.inputs[2], c, out_pad);
    if (want.dtype() == DType::kUndefined) continue;
    SCOPED_TRACE("iter " + std::to_string(iter) + " x " + shape_str(xs) + " w " + shape_str(ws) + " attrs " +
                 s.attrs.to_string());
    EXPECT_TRUE(cpu_matches(s, want));
    if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
  }
}

TEST(LinearOps, ConvTransposeOutputShape) {
  std::mt19937 rng(22);
  OpSpec s{"ConvTranspose", 11, {}, {random_tensor(DType::kFloat32, {1, 2, 3, 4}, rng), random_tensor(DType::kFloat32, {2, 3, 3, 3}, rng)},
           {false, true}};
  s.attrs.set("strides", std::vector<int64_t>{2, 2});
  s.attrs.set("output_shape", std::vector<int64_t>{8, 9});
  std::vector<HostTensor> out;
  ASSERT_TRUE(run_op(s, "cpu", &out).is_ok());
  EXPECT_EQ(out[0].shape(), (Shape{1, 3, 8, 9}));
  // total padding 2*2+3-8 = -1 -> output extends past the taps; 2*3+3-9 = 0.
  if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s)); }
}

// ---------------------------------------------------------------- Gemm

TEST(LinearOps, GemmRandomMatchesNaiveAndOpenCL) {
  std::mt19937 rng(31);
  for (int iter = 0; iter < 20; ++iter) {
    const int64_t M = rnd(rng, 1, iter < 4 ? 150 : 20), N = rnd(rng, 1, iter < 4 ? 140 : 20),
                  K = rnd(rng, 1, iter < 4 ? 300 : 20);
    const bool ta = rnd(rng, 0, 1), tb = rnd(rng, 0, 1);
    const float alpha = iter % 3 ? 1.f : 0.5f, beta = iter % 4 ? 1.f : -2.f;
    Shape cshape;
    switch (iter % 5) {
      case 0: cshape = {M, N}; break;
      case 1: cshape = {N}; break;
      case 2: cshape = {M, 1}; break;
      case 3: cshape = {1}; break;
      default: break;
    }
    OpSpec s{"Gemm", 13, {},
             {random_tensor(DType::kFloat32, ta ? Shape{K, M} : Shape{M, K}, rng),
              random_tensor(DType::kFloat32, tb ? Shape{N, K} : Shape{K, N}, rng)},
             {false, iter % 2 == 0}};
    s.attrs.set("transA", int64_t(ta));
    s.attrs.set("transB", int64_t(tb));
    s.attrs.set("alpha", alpha);
    s.attrs.set("beta", beta);
    const bool has_c = iter % 5 != 4;
    if (has_c) {
      s.inputs.push_back(random_tensor(DType::kFloat32, cshape, rng));
      s.constant.push_back(true);
    }
    SCOPED_TRACE("iter " + std::to_string(iter));
    EXPECT_TRUE(cpu_matches(s, naive_gemm(s.inputs[0], s.inputs[1], has_c ? &s.inputs[2] : nullptr, ta, tb, alpha, beta)));
    if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
  }
}

TEST(LinearOps, GemmOldOpsetsNeedC) {
  std::mt19937 rng(32);
  OpSpec s{"Gemm", 9, {}, {random_tensor(DType::kFloat32, {2, 3}, rng), random_tensor(DType::kFloat32, {3, 4}, rng)},
           {false, true}};
  std::vector<HostTensor> out;
  Status st = run_op(s, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Gemm_node"), std::string::npos) << st.message();
  // Gemm-6 with broadcast=0 requires C to be exactly M x N.
  OpSpec legacy{"Gemm", 6, {}, {random_tensor(DType::kFloat32, {2, 3}, rng), random_tensor(DType::kFloat32, {3, 4}, rng),
                                random_tensor(DType::kFloat32, {4}, rng)},
                {false, true, true}};
  EXPECT_FALSE(run_op(legacy, "cpu", &out).is_ok());
  legacy.attrs.set("broadcast", int64_t{1});
  ASSERT_TRUE(run_op(legacy, "cpu", &out).is_ok());
  EXPECT_TRUE(tensors_close(out[0], naive_gemm(legacy.inputs[0], legacy.inputs[1], &legacy.inputs[2], false, false, 1, 1), 1e-5, 1e-5));
}

TEST(LinearOps, LargeGemmTakesClblastPath) {
  // 512^3 multiply-adds: far above the CLBlast threshold.
  std::mt19937 rng(33);
  OpSpec s{"Gemm", 13, {}, {random_tensor(DType::kFloat32, {512, 512}, rng), random_tensor(DType::kFloat32, {512, 512}, rng),
                            random_tensor(DType::kFloat32, {512}, rng)},
           {false, true, true}};
  s.attrs.set("transB", int64_t{1});
  s.attrs.set("alpha", 0.25f);
  if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
}

// ---------------------------------------------------------------- fused epilogue form

// What the fusion passes produce (runtime/ops/linear_epilogue.h): `activation`
// attributes and a residual input 3, before (residual=1) or after (residual=2) the activation.
float ref_act(const std::string& act, float x, float a, float b) {
  if (act == "Relu") return std::max(x, 0.f);
  if (act == "LeakyRelu") return x >= 0 ? x : a * x;
  if (act == "Clip") return std::min(std::max(x, a), b);
  if (act == "HardSwish") return x * std::max(0.f, std::min(1.f, x / 6.f + 0.5f));
  if (act == "Sigmoid") return 1.f / (1.f + std::exp(-x));
  if (act == "Tanh") return std::tanh(x);
  if (act == "Elu") return x >= 0 ? x : a * (std::exp(x) - 1.f);
  if (act == "Gelu") return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
  if (act == "GeluTanh")
    return static_cast<float>(0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))));
  return x;
}

HostTensor ref_epilogue(HostTensor y, const HostTensor& r, const std::string& act, float a, float b, int mode) {
  for (int64_t i = 0; i < y.numel(); ++i) {
    float v = y.as<float>()[i];
    if (mode == 1) v += r.as<float>()[i];
    v = ref_act(act, v, a, b);
    if (mode == 2) v += r.as<float>()[i];
    y.as<float>()[i] = v;
  }
  return y;
}

void add_epilogue(OpSpec* s, const std::string& act, float a, float b, int mode, const HostTensor& r) {
  s->attrs.set("activation", act);
  s->attrs.set("activation_alpha", a);
  s->attrs.set("activation_beta", b);
  s->attrs.set("residual", int64_t{mode});
  while (s->inputs.size() < 3) {
    s->inputs.push_back(HostTensor());
    s->constant.push_back(false);
  }
  s->inputs.push_back(r);
  s->constant.push_back(false);
}

TEST(LinearOps, FusedEpilogueConvPaths) {
  std::mt19937 rng(51);
  struct Case { Shape x, w; int64_t group, stride, pad; bool transpose; };
  const Case cases[] = {{{1, 3, 8, 8}, {4, 3, 3, 3}, 1, 1, 1, false},      // direct kernel
                        {{2, 8, 9, 7}, {32, 8, 3, 3}, 1, 1, 1, false},     // im2col + GEMM
                        {{2, 24, 5, 6}, {32, 12, 1, 1}, 2, 1, 0, false},   // pointwise, groups
                        {{2, 6, 9, 8}, {6, 1, 3, 3}, 6, 2, 1, false},      // depthwise
                        {{1, 4, 5, 6}, {4, 3, 3, 3}, 1, 2, 1, true}};      // ConvTranspose
  const char* acts[] = {"Relu", "Clip", "HardSwish", "LeakyRelu", "Sigmoid"};
  int i = 0;
  for (const Case& k : cases) {
    ConvAttrs c;
    c.group = k.group;
    const size_t sp = k.x.size() - 2;
    c.strides.assign(sp, k.stride);
    c.dilations.assign(sp, 1);
    c.pads.assign(2 * sp, k.pad);
    const int64_t M = k.transpose ? k.w[1] * k.group : k.w[0];
    OpSpec s{k.transpose ? "ConvTranspose" : "Conv", 11, to_attrs(c),
             {random_tensor(DType::kFloat32, k.x, rng), random_tensor(DType::kFloat32, k.w, rng),
              random_tensor(DType::kFloat32, {M}, rng)},
             {false, true, true}};
    const HostTensor plain = k.transpose ? naive_conv_transpose(s.inputs[0], s.inputs[1], &s.inputs[2], c, {0, 0})
                                         : naive_conv(s.inputs[0], s.inputs[1], &s.inputs[2], c);
    const int mode = 1 + i % 2;
    const std::string act = acts[i++ % 5];
    const HostTensor r = random_tensor(DType::kFloat32, plain.shape(), rng);
    add_epilogue(&s, act, act == "Clip" ? -0.3f : 0.1f, 0.4f, mode, r);
    SCOPED_TRACE(s.op_type + " x " + shape_str(k.x) + " w " + shape_str(k.w) + " " + act);
    EXPECT_TRUE(cpu_matches(s, ref_epilogue(plain, r, act, act == "Clip" ? -0.3f : 0.1f, 0.4f, mode)));
    if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
  }
}

TEST(LinearOps, FusedEpilogueGemmBothPaths) {
  // 40x50x60 runs kiln's tiled kernel, 512x522x532 CLBlast plus the epilogue kernel; both split the
  // CPU GEMM over threads where there are several cores.
  std::mt19937 rng(52);
  for (const char* act : {"Tanh", "Gelu", "GeluTanh"})
  for (int64_t n : {40, 512}) {
    OpSpec s{"Gemm", 13, {}, {random_tensor(DType::kFloat32, {n, n + 10}, rng), random_tensor(DType::kFloat32, {n + 10, n + 20}, rng),
                              random_tensor(DType::kFloat32, {n, 1}, rng)},
             {false, true, true}};
    s.attrs.set("alpha", 0.5f);
    s.attrs.set("beta", 2.f);
    const HostTensor plain = naive_gemm(s.inputs[0], s.inputs[1], &s.inputs[2], false, false, 0.5f, 2.f);
    const HostTensor r = random_tensor(DType::kFloat32, plain.shape(), rng);
    add_epilogue(&s, act, 0.f, 0.f, n == 40 ? 1 : 2, r);
    SCOPED_TRACE(std::string(act) + " n " + std::to_string(n));
    EXPECT_TRUE(cpu_matches(s, ref_epilogue(plain, r, act, 0.f, 0.f, n == 40 ? 1 : 2)));
    if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
  }
}

// ---------------------------------------------------------------- MatMul

TEST(LinearOps, MatMulBroadcastingMatchesNaiveAndOpenCL) {
  std::mt19937 rng(41);
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{3, 4}, {4, 5}},          {{2, 3, 4}, {4, 5}},       {{2, 3, 4}, {2, 4, 5}},     {{1, 3, 4}, {2, 4, 5}},
      {{2, 1, 3, 4}, {3, 4, 2}}, {{4}, {4, 5}},             {{2, 3, 4}, {4}},           {{4}, {4}},
      {{5, 2, 3, 4}, {1, 4, 6}}, {{3, 4}, {2, 2, 4, 5}},    {{70, 33}, {33, 90}},       {{2, 1, 65, 17}, {1, 3, 17, 66}}};
  for (const auto& [as, bs] : cases) {
    OpSpec s{"MatMul", 13, {}, {random_tensor(DType::kFloat32, as, rng), random_tensor(DType::kFloat32, bs, rng)},
             {false, false}};
    SCOPED_TRACE(shape_str(as) + " x " + shape_str(bs));
    EXPECT_TRUE(cpu_matches(s, naive_matmul(s.inputs[0], s.inputs[1])));
    if (have_opencl()) { EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-4)); }
  }
  OpSpec bad{"MatMul", 13, {}, {random_tensor(DType::kFloat32, {2, 3}, rng), random_tensor(DType::kFloat32, {4, 5}, rng)},
             {false, false}};
  std::vector<HostTensor> out;
  Status st = run_op(bad, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("inner dims"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln::test
