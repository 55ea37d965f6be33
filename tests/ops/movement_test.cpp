// Movement family: Transpose, Concat, Split, Slice, Gather, Expand, Tile, Pad, Resize and the
// build-time constant ops. Each case checks the CPU result against an expectation computed here
// (an independent element-by-element index mapping), then OpenCL against the CPU.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "compiler/compiler.h"
#include "compiler/ir/graph.h"
#include "tests/ops/op_harness.h"

namespace kiln::test {
namespace {

const DType kDtypes[] = {DType::kFloat32, DType::kInt64, DType::kUInt8, DType::kInt32, DType::kBool};

HostTensor ints(const std::vector<int64_t>& v, DType dt = DType::kInt64) {
  HostTensor t(dt, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == DType::kInt64) t.as<int64_t>()[i] = v[i];
    else t.as<int32_t>()[i] = static_cast<int32_t>(v[i]);
  }
  return t;
}

HostTensor floats(const std::vector<float>& v) {
  HostTensor t(DType::kFloat32, {static_cast<int64_t>(v.size())});
  std::copy(v.begin(), v.end(), t.as<float>());
  return t;
}

std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> c(s.size());
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    c[d] = s[d] ? i % s[d] : 0;
    if (s[d]) i /= s[d];
  }
  return c;
}

int64_t ravel(const std::vector<int64_t>& c, const Shape& s) {
  int64_t i = 0;
  for (size_t d = 0; d < s.size(); ++d) i = i * s[d] + c[d];
  return i;
}

// out[o] = in[src(o)], or zero bytes where src returns -1: the reference for every movement op.
HostTensor map_ref(const HostTensor& in, const Shape& out_shape,
                   const std::function<int64_t(const std::vector<int64_t>&)>& src) {
  HostTensor out(in.dtype(), out_shape);
  const size_t es = dtype_size(in.dtype());
  for (int64_t o = 0; o < out.numel(); ++o) {
    const int64_t i = src(unravel(o, out_shape));
    if (i < 0) std::memset(out.data() + o * es, 0, es);
    else std::memcpy(out.data() + o * es, in.data() + i * es, es);
  }
  return out;
}

// Runs on the CPU, compares with `want` exactly, then OpenCL against the CPU.
void check(const OpSpec& s, const std::vector<HostTensor>& want, double rtol = 0, double atol = 0) {
  std::vector<HostTensor> got;
  Status st = run_op(s, "cpu", &got);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(tensors_close(got[i], want[i], rtol, atol)) << s.op_type << " output " << i;
  if (have_opencl()) {
    EXPECT_TRUE(opencl_matches_cpu(s, std::max(rtol, 1e-5), atol));
  }
}

TEST(MovementOps, TransposeRandomPermsAndDtypes) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 15; ++trial) {
    const int rank = 1 + trial % 5;
    const DType dt = kDtypes[trial % 5];
    HostTensor x = random_tensor(dt, random_shape(rank, rng, 6), rng, -50, 50);
    std::vector<int64_t> perm(rank);
    std::iota(perm.begin(), perm.end(), 0);
    OpSpec s{"Transpose", trial % 2 ? 13 : 1, {}, {x}, {false}};
    if (trial % 4 == 3) {
      std::reverse(perm.begin(), perm.end());  // the default: no perm attribute
    } else {
      std::shuffle(perm.begin(), perm.end(), rng);
      s.attrs.set("perm", perm);
    }
    Shape out(rank);
    for (int i = 0; i < rank; ++i) out[i] = x.shape()[perm[i]];
    const auto xs = shape_strides(x.shape());
    check(s, {map_ref(x, out, [&](const std::vector<int64_t>& o) {
            int64_t i = 0;
            for (int d = 0; d < rank; ++d) i += o[d] * xs[perm[d]];
            return i;
          })});
  }
}

TEST(MovementOps, TransposeLargeTiledAndWidened) {
  // Big enough for the CPU's tiled path (NCHW -> NHWC) and the OpenCL widened copy (rows of the
  // inner 64x40 plane stay contiguous under perm 1,0,2,3).
  std::mt19937 rng(12);
  for (DType dt : {DType::kFloat32, DType::kUInt8, DType::kInt64}) {
    HostTensor x = random_tensor(dt, {2, 3, 64, 40}, rng, -50, 50);
    const auto xs = shape_strides(x.shape());
    for (const std::vector<int64_t>& perm : {std::vector<int64_t>{0, 2, 3, 1}, std::vector<int64_t>{1, 0, 2, 3},
                                             std::vector<int64_t>{3, 2, 1, 0}, std::vector<int64_t>{0, 3, 1, 2},
                                             std::vector<int64_t>{2, 3, 0, 1}}) {
      OpSpec s{"Transpose", 13, {}, {x}, {false}};
      s.attrs.set("perm", perm);
      Shape out(4);
      for (int i = 0; i < 4; ++i) out[i] = x.shape()[perm[i]];
      check(s, {map_ref(x, out, [&](const std::vector<int64_t>& o) {
              int64_t i = 0;
              for (int d = 0; d < 4; ++d) i += o[d] * xs[perm[d]];
              return i;
            })});
    }
  }
}

TEST(MovementOps, ConcatRandomAxesAndDtypes) {
  std::mt19937 rng(21);
  for (int trial = 0; trial < 15; ++trial) {
    const int rank = 1 + trial % 4;
    const DType dt = kDtypes[trial % 5];
    const int n = 2 + trial % 3;
    Shape base = random_shape(rank, rng, 4);
    const int64_t axis = static_cast<int64_t>(rng() % rank) - (trial % 2 ? rank : 0);
    const int64_t a = axis < 0 ? axis + rank : axis;
    OpSpec s{"Concat", (trial % 3 || axis < 0) ? 13 : 4, {}, {}, {}};
    s.attrs.set("axis", axis);
    std::vector<int64_t> starts;
    Shape out = base;
    out[a] = 0;
    for (int k = 0; k < n; ++k) {
      Shape sh = base;
      sh[a] = static_cast<int64_t>(rng() % 4);  // 0 too: empty pieces
      starts.push_back(out[a]);
      out[a] += sh[a];
      s.inputs.push_back(random_tensor(dt, sh, rng, -50, 50));
      s.constant.push_back(false);
    }
    if (shape_numel(out) == 0) continue;
    HostTensor want(dt, out);
    const size_t es = dtype_size(dt);
    for (int64_t o = 0; o < want.numel(); ++o) {
      std::vector<int64_t> c = unravel(o, out);
      int k = n - 1;
      while (c[a] < starts[k]) --k;
      c[a] -= starts[k];
      std::memcpy(want.data() + o * es, s.inputs[k].data() + ravel(c, s.inputs[k].shape()) * es, es);
    }
    check(s, {want});
  }
}

std::vector<HostTensor> split_ref(const HostTensor& x, int64_t axis, const std::vector<int64_t>& sizes) {
  std::vector<HostTensor> r;
  int64_t at = 0;
  for (int64_t n : sizes) {
    Shape sh = x.shape();
    sh[axis] = n;
    const Shape xs = x.shape();
    r.push_back(map_ref(x, sh, [&](std::vector<int64_t> o) {
      o[axis] += at;
      return ravel(o, xs);
    }));
    at += n;
  }
  return r;
}

TEST(MovementOps, SplitEveryForm) {
  std::mt19937 rng(31);
  HostTensor x = random_tensor(DType::kFloat32, {4, 7, 3}, rng);
  {  // opset 13, split as an input
    OpSpec s{"Split", 13, {}, {x, ints({2, 0, 5})}, {false, true}, 3};
    s.attrs.set("axis", int64_t{-2});
    check(s, split_ref(x, 1, {2, 0, 5}));
  }
  {  // opset 11, split as an attribute
    OpSpec s{"Split", 11, {}, {x}, {false}, 2};
    s.attrs.set("axis", int64_t{1});
    s.attrs.set("split", std::vector<int64_t>{3, 4});
    check(s, split_ref(x, 1, {3, 4}));
  }
  {  // default: equal parts along axis 0
    OpSpec s{"Split", 13, {}, {x}, {false}, 2};
    check(s, split_ref(x, 0, {2, 2}));
  }
  {  // opset 18 num_outputs: ceil-sized chunks, the last one smaller
    OpSpec s{"Split", 18, {}, {x}, {false}, 3};
    s.attrs.set("axis", int64_t{1});
    s.attrs.set("num_outputs", int64_t{3});
    check(s, split_ref(x, 1, {3, 3, 1}));
  }
  {  // int64 data, as in shape arithmetic
    HostTensor xi = random_tensor(DType::kInt64, {6}, rng, -100, 100);
    OpSpec s{"Split", 13, {}, {xi}, {false}, 3};
    check(s, split_ref(xi, 0, {2, 2, 2}));
  }
  {
    OpSpec s{"Split", 13, {}, {x}, {false}, 3};
    std::vector<HostTensor> out;
    Status st = run_op(s, "cpu", &out);
    EXPECT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("does not split equally"), std::string::npos) << st.message();
  }
}

// The indices Slice visits on an axis of n elements, as the ONNX spec words it: negatives
// count from the end, then starts clamp to [0, n] ([0, n-1] for negative steps) and ends to
// [0, n] ([-1, n-1]). (numpy differs in one corner: a start below -n with a negative step is
// empty there, element 0 here.)
std::vector<int64_t> onnx_slice(int64_t n, int64_t start, int64_t end, int64_t step) {
  if (start < 0) start = std::max<int64_t>(start + n, -1);
  if (end < 0) end = end < -n ? -1 : end + n;
  start = step > 0 ? std::clamp<int64_t>(start, 0, n) : std::clamp<int64_t>(start, 0, std::max<int64_t>(n - 1, 0));
  end = step > 0 ? std::clamp<int64_t>(end, 0, n) : std::clamp<int64_t>(end, -1, n - 1);
  std::vector<int64_t> r;
  for (int64_t i = start; step > 0 ? i < end : i > end; i += step) r.push_back(i);
  return r;
}

TEST(MovementOps, SliceRandomIncludingNegativeStepsAndClamping) {
  std::mt19937 rng(41);
  const int64_t kMax = std::numeric_limits<int64_t>::max(), kMin = std::numeric_limits<int64_t>::min();
  for (int trial = 0; trial < 25; ++trial) {
    const int rank = 1 + trial % 4;
    const DType dt = kDtypes[trial % 5];
    HostTensor x = random_tensor(dt, random_shape(rank, rng, 6), rng, -50, 50);
    std::vector<int64_t> axes(rank);
    std::iota(axes.begin(), axes.end(), 0);
    std::shuffle(axes.begin(), axes.end(), rng);
    axes.resize(1 + rng() % rank);
    std::vector<int64_t> starts, ends, steps, axes_arg;
    std::vector<std::vector<int64_t>> visit(rank);
    for (int d = 0; d < rank; ++d) {
      visit[d].resize(x.shape()[d]);
      std::iota(visit[d].begin(), visit[d].end(), 0);
    }
    for (int64_t a : axes) {
      const int64_t n = x.shape()[a];
      int64_t step = static_cast<int64_t>(rng() % 3) + 1;
      if (rng() % 2) step = -step;
      int64_t st = static_cast<int64_t>(rng() % (2 * n + 5)) - n - 2;
      int64_t en = static_cast<int64_t>(rng() % (2 * n + 5)) - n - 2;
      if (rng() % 4 == 0) en = step > 0 ? kMax : kMin;
      starts.push_back(st);
      ends.push_back(en);
      steps.push_back(step);
      axes_arg.push_back(rng() % 2 ? a - rank : a);
      visit[a] = onnx_slice(n, st, en, step);
    }
    Shape out(rank);
    for (int d = 0; d < rank; ++d) out[d] = static_cast<int64_t>(visit[d].size());
    const Shape xs = x.shape();
    HostTensor want = map_ref(x, out, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> c(rank);
      for (int d = 0; d < rank; ++d) c[d] = visit[d][o[d]];
      return ravel(c, xs);
    });
    OpSpec s{"Slice", 13, {}, {x, ints(starts), ints(ends), ints(axes_arg), ints(steps)}, {false, true, true, true, true}};
    check(s, {want});
  }
}

TEST(MovementOps, SliceOldAttributeFormAndInt32Inputs) {
  std::mt19937 rng(42);
  HostTensor x = random_tensor(DType::kFloat32, {5, 6}, rng);
  const Shape xs = x.shape();
  HostTensor want = map_ref(x, {3, 4}, [&](const std::vector<int64_t>& o) { return ravel({o[0] + 1, o[1] + 2}, xs); });
  OpSpec s1{"Slice", 1, {}, {x}, {false}};
  s1.attrs.set("starts", std::vector<int64_t>{1, 2});
  s1.attrs.set("ends", std::vector<int64_t>{4, 1000});
  check(s1, {want});
  // A start below -dim with a negative step clamps to element 0 (the spec's rule).
  OpSpec back{"Slice", 13, {}, {x, ints({-100}), ints({-200}), ints({1}), ints({-1})}, {false, true, true, true, true}};
  check(back, {map_ref(x, {5, 1}, [&](const std::vector<int64_t>& o) { return ravel({o[0], 0}, xs); })});
  OpSpec s10{"Slice", 10, {}, {x, ints({1, -4}, DType::kInt32), ints({-1, 6}, DType::kInt32)}, {false, true, true}};
  HostTensor want10 = map_ref(x, {3, 4}, [&](const std::vector<int64_t>& o) { return ravel({o[0] + 1, o[1] + 2}, xs); });
  check(s10, {want10});
}

TEST(MovementOps, GatherRandomAxesIndexTypesAndNegatives) {
  std::mt19937 rng(51);
  for (int trial = 0; trial < 15; ++trial) {
    const int rank = 1 + trial % 4;
    const DType dt = kDtypes[trial % 3];
    HostTensor x = random_tensor(dt, random_shape(rank, rng, 5), rng, -50, 50);
    const int64_t axis = static_cast<int64_t>(rng() % rank);
    const int64_t n = x.shape()[axis];
    const DType it = trial % 2 ? DType::kInt32 : DType::kInt64;
    HostTensor ind(it, random_shape(trial % 3, rng, 3));
    for (int64_t j = 0; j < ind.numel(); ++j) {
      const int64_t v = static_cast<int64_t>(rng() % (2 * n)) - n;
      if (it == DType::kInt64) ind.as<int64_t>()[j] = v;
      else ind.as<int32_t>()[j] = static_cast<int32_t>(v);
    }
    Shape out(x.shape().begin(), x.shape().begin() + axis);
    out.insert(out.end(), ind.shape().begin(), ind.shape().end());
    out.insert(out.end(), x.shape().begin() + axis + 1, x.shape().end());
    const Shape xs = x.shape();
    const size_t ir = ind.shape().size();
    HostTensor want = map_ref(x, out, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> c(o.begin(), o.begin() + axis);
      std::vector<int64_t> jc(o.begin() + axis, o.begin() + axis + ir);
      int64_t v = tensor_int_at(ind.view(), ravel(jc, ind.shape()));
      c.push_back(v < 0 ? v + n : v);
      c.insert(c.end(), o.begin() + axis + ir, o.end());
      return ravel(c, xs);
    });
    OpSpec s{"Gather", 13, {}, {x, ind}, {false, trial % 3 == 0}};
    s.attrs.set("axis", trial % 2 ? axis - rank : axis);
    check(s, {want});
  }
}

TEST(MovementOps, GatherOutOfRangeIsAnError) {
  std::mt19937 rng(52);
  HostTensor x = random_tensor(DType::kFloat32, {4, 3}, rng);
  std::vector<HostTensor> out;
  OpSpec runtime{"Gather", 13, {}, {x, ints({1, 4})}, {false, false}};
  Status st = run_op(runtime, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("index 4"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("out of range"), std::string::npos) << st.message();
  OpSpec build{"Gather", 13, {}, {x, ints({-5})}, {false, true}};
  st = run_op(build, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Gather_node"), std::string::npos) << st.message();
}

TEST(MovementOps, ExpandBidirectional) {
  std::mt19937 rng(61);
  struct Case {
    Shape in;
    std::vector<int64_t> shape;
    Shape out;
  };
  const Case cases[] = {{{3, 1}, {2, 1, 6}, {2, 3, 6}},
                        {{1}, {4, 5}, {4, 5}},
                        {{2, 3}, {1, 1}, {2, 3}},
                        {{4, 1, 5}, {3, 1}, {4, 3, 5}},
                        {{1, 1, 1, 7}, {2, 3, 4, 1}, {2, 3, 4, 7}}};
  int k = 0;
  for (const Case& c : cases) {
    HostTensor x = random_tensor(kDtypes[k++ % 5], c.in, rng, -50, 50);
    const auto bs = broadcast_strides(c.in, c.out);
    HostTensor want = map_ref(x, c.out, [&](const std::vector<int64_t>& o) {
      int64_t i = 0;
      for (size_t d = 0; d < o.size(); ++d) i += o[d] * bs[d];
      return i;
    });
    check(OpSpec{"Expand", 13, {}, {x, ints(c.shape)}, {false, true}}, {want});
  }
}

TEST(MovementOps, TileRandom) {
  std::mt19937 rng(71);
  for (int trial = 0; trial < 10; ++trial) {
    const int rank = 1 + trial % 4;
    HostTensor x = random_tensor(kDtypes[trial % 5], random_shape(rank, rng, 4), rng, -50, 50);
    std::vector<int64_t> reps(rank);
    for (auto& r : reps) r = 1 + rng() % 3;
    Shape out = x.shape();
    for (int d = 0; d < rank; ++d) out[d] *= reps[d];
    const Shape xs = x.shape();
    HostTensor want = map_ref(x, out, [&](std::vector<int64_t> o) {
      for (int d = 0; d < rank; ++d) o[d] %= xs[d];
      return ravel(o, xs);
    });
    check(OpSpec{"Tile", 13, {}, {x, ints(reps)}, {false, true}}, {want});
  }
}

int64_t numpy_pad_source(int64_t o, int64_t begin, int64_t n, const std::string& mode) {
  int64_t i = o - begin;
  if (i >= 0 && i < n) return i;
  if (mode == "constant") return -1;
  if (mode == "edge") return i < 0 ? 0 : n - 1;
  if (mode == "wrap") return ((i % n) + n) % n;
  if (n == 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect, repeatedly
  return i;
}

TEST(MovementOps, PadModesAndForms) {
  std::mt19937 rng(81);
  const char* modes[] = {"constant", "reflect", "edge", "wrap"};
  for (int trial = 0; trial < 20; ++trial) {
    const std::string mode = modes[trial % 4];
    const int rank = 1 + trial % 4;
    const DType dt = kDtypes[trial % 5];
    HostTensor x = random_tensor(dt, random_shape(rank, rng, 5), rng, -50, 50);
    std::vector<int64_t> pads(2 * rank);
    for (int d = 0; d < 2 * rank; ++d) {
      pads[d] = static_cast<int64_t>(rng() % 4);
      if (mode == "constant" && rng() % 3 == 0) pads[d] = -std::min<int64_t>(1, x.shape()[d % rank] - 1);
    }
    Shape out = x.shape();
    for (int d = 0; d < rank; ++d) out[d] += pads[d] + pads[rank + d];
    const Shape xs = x.shape();
    HostTensor want = map_ref(x, out, [&](const std::vector<int64_t>& o) {
      std::vector<int64_t> c(rank);
      for (int d = 0; d < rank; ++d) {
        c[d] = numpy_pad_source(o[d], pads[d], xs[d], mode);
        if (c[d] < 0) return int64_t{-1};
      }
      return ravel(c, xs);
    });
    OpSpec s{"Pad", mode == "wrap" ? 19 : 13, {}, {x, ints(pads)}, {false, true}};
    s.attrs.set("mode", mode);
    check(s, {want});
  }
}

TEST(MovementOps, PadConstantValueAxesAndOldForm) {
  std::mt19937 rng(82);
  HostTensor x = random_tensor(DType::kFloat32, {2, 3, 4}, rng);
  const Shape xs = x.shape();
  const Shape out = {2, 4, 7};  // axes {1, -1}: pads 1 before axis 1, 3 after axis 2
  auto want_with = [&](float v) {
    HostTensor w(DType::kFloat32, out);
    for (int64_t o = 0; o < w.numel(); ++o) {
      std::vector<int64_t> c = unravel(o, out);
      c[1] -= 1;
      w.as<float>()[o] = c[1] < 0 || c[2] >= 4 ? v : x.as<float>()[ravel(c, xs)];
    }
    return w;
  };
  // v18: axes input, constant_value as a build-time constant and as a runtime input.
  for (bool runtime_value : {false, true}) {
    OpSpec s{"Pad", 18, {}, {x, ints({1, 0, 0, 3}), scalar_f32(2.5f), ints({1, -1})}, {false, true, !runtime_value, true}};
    check(s, {want_with(2.5f)});
  }
  // v2: pads and value as attributes.
  OpSpec s2{"Pad", 2, {}, {x}, {false}};
  s2.attrs.set("pads", std::vector<int64_t>{0, 1, 0, 0, 0, 3});
  s2.attrs.set("value", -1.5f);
  check(s2, {want_with(-1.5f)});
  // wrap before opset 19 is not a mode.
  OpSpec bad{"Pad", 18, {}, {x, ints({0, 0, 1, 0, 0, 1})}, {false, true}};
  bad.attrs.set("mode", std::string("wrap"));
  std::vector<HostTensor> got;
  Status st = run_op(bad, "cpu", &got);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("unknown mode 'wrap'"), std::string::npos) << st.message();
}

TEST(MovementOps, ResizeMatchesHandComputedBilinearAndNearest) {
  std::mt19937 rng(91);
  HostTensor x = random_tensor(DType::kFloat32, {1, 2, 3, 4}, rng);
  auto at = [&](int64_t c, int64_t h, int64_t w) { return x.as<float>()[(c * 3 + h) * 4 + w]; };
  {  // linear, half_pixel, x2: x_ori = (o + 0.5) / 2 - 0.5, clamped to the edges
    OpSpec s{"Resize", 13, {}, {x, HostTensor(), floats({1, 1, 2, 2})}, {false, false, true}};
    s.attrs.set("mode", std::string("linear"));
    HostTensor want(DType::kFloat32, {1, 2, 6, 8});
    auto lerp_axis = [](int64_t o, int64_t n, int64_t* i0, int64_t* i1, double* f) {
      double xo = std::clamp((o + 0.5) / 2 - 0.5, 0.0, static_cast<double>(n - 1));
      *i0 = static_cast<int64_t>(std::floor(xo));
      *i1 = std::min(*i0 + 1, n - 1);
      *f = xo - *i0;
    };
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t h = 0; h < 6; ++h)
        for (int64_t w = 0; w < 8; ++w) {
          int64_t h0, h1, w0, w1;
          double fh, fw;
          lerp_axis(h, 3, &h0, &h1, &fh);
          lerp_axis(w, 4, &w0, &w1, &fw);
          const double top = at(c, h0, w0) * (1 - fw) + at(c, h0, w1) * fw;
          const double bot = at(c, h1, w0) * (1 - fw) + at(c, h1, w1) * fw;
          want.as<float>()[(c * 6 + h) * 8 + w] = static_cast<float>(top * (1 - fh) + bot * fh);
        }
    check(s, {want}, 1e-5, 1e-6);
  }
  {  // nearest, asymmetric, floor, sizes: x3 = repeat
    OpSpec s{"Resize", 13, {}, {x, HostTensor(), HostTensor(), ints({1, 2, 9, 12})}, {false, false, false, true}};
    s.attrs.set("mode", std::string("nearest"));
    s.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
    s.attrs.set("nearest_mode", std::string("floor"));
    const Shape xs = x.shape();
    check(s, {map_ref(x, {1, 2, 9, 12}, [&](const std::vector<int64_t>& o) {
            return ravel({o[0], o[1], o[2] / 3, o[3] / 3}, xs);
          })});
  }
}

TEST(MovementOps, ResizeNearestMovesAnyDtype) {
  std::mt19937 rng(94);
  for (DType dt : {DType::kUInt8, DType::kInt64, DType::kInt32}) {
    HostTensor x = random_tensor(dt, {1, 2, 3, 4}, rng, -50, 50);
    OpSpec s{"Resize", 13, {}, {x, HostTensor(), floats({1, 1, 2, 0.5f})}, {false, false, true}};
    s.attrs.set("mode", std::string("nearest"));
    s.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
    const Shape xs = x.shape();
    // asymmetric: x_original = o / scale; round_prefer_floor of an integral value is itself.
    HostTensor want = map_ref(x, {1, 2, 6, 2}, [&](const std::vector<int64_t>& o) {
      return ravel({0, o[1], o[2] / 2, o[3] * 2}, xs);
    });
    std::vector<HostTensor> got;
    Status st = run_op(s, "cpu", &got);
    ASSERT_TRUE(st.is_ok()) << st.message();
    EXPECT_TRUE(tensors_close(got[0], want, 0, 0));
    if (have_opencl()) {  // runs on the CPU inside an opencl plan: the device kernel is float32-only
      st = run_op(s, "opencl", &got);
      ASSERT_TRUE(st.is_ok()) << st.message();
      EXPECT_TRUE(tensors_close(got[0], want, 0, 0));
    }
  }
  HostTensor xi = random_tensor(DType::kInt32, {1, 1, 2, 2}, rng, -5, 5);
  OpSpec lin{"Resize", 13, {}, {xi, HostTensor(), floats({1, 1, 2, 2})}, {false, false, true}};
  lin.attrs.set("mode", std::string("linear"));
  std::vector<HostTensor> got;
  Status st = run_op(lin, "cpu", &got);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.message();
}

TEST(MovementOps, ResizeModesOpenclMatchesCpu) {
  if (!have_opencl()) GTEST_SKIP() << "no OpenCL device";
  std::mt19937 rng(92);
  const char* modes[] = {"nearest", "linear", "cubic"};
  const char* coords[] = {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                          "half_pixel_symmetric", "tf_crop_and_resize"};
  const char* nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  for (int trial = 0; trial < 30; ++trial) {
    const std::string mode = modes[trial % 3];
    const std::string coord = coords[trial % 7];
    if (coord == "tf_half_pixel_for_nn" && mode != "nearest") continue;
    HostTensor x = random_tensor(DType::kFloat32, {1 + trial % 2, 2, 3 + trial % 4, 4 + trial % 3}, rng);
    const int opset = coord == "half_pixel_symmetric" || trial % 4 == 0 ? 19 : 13;
    OpSpec s{"Resize", opset, {}, {x, HostTensor(), HostTensor(), HostTensor()}, {false, true, true, true}};
    s.attrs.set("mode", mode);
    s.attrs.set("coordinate_transformation_mode", coord);
    s.attrs.set("nearest_mode", std::string(nearest[trial % 4]));
    if (trial % 5 == 1) s.attrs.set("exclude_outside", int64_t{1});
    if (opset == 19 && mode != "nearest" && trial % 2 == 0) s.attrs.set("antialias", int64_t{1});
    if (coord == "tf_crop_and_resize") {
      s.inputs[1] = floats({0, 0, 0.2f, 0.1f, 1, 1, 0.9f, 1.2f});
      s.attrs.set("extrapolation_value", 7.0f);
    }
    const float sh = (trial % 3 == 0) ? 0.6f : 1.7f, sw = (trial % 2) ? 2.0f : 0.75f;
    if (trial % 2) s.inputs[2] = floats({1, 1, sh, sw});
    else s.inputs[3] = ints({x.shape()[0], 2, 2 + trial % 5, 3 + trial % 6});
    if (opset == 19 && trial % 8 == 0 && coord != "tf_crop_and_resize") {  // axes subset
      s.attrs.set("axes", std::vector<int64_t>{-1, 2});
      if (trial % 2) s.inputs[2] = floats({sw, sh});
      else s.inputs[3] = ints({5, 2});
    }
    EXPECT_TRUE(opencl_matches_cpu(s, 1e-4, 1e-5)) << mode << " " << coord << " trial " << trial;
  }
}

TEST(MovementOps, ResizeBadInputsAreClearErrors) {
  std::mt19937 rng(93);
  HostTensor x = random_tensor(DType::kFloat32, {1, 1, 2, 2}, rng);
  std::vector<HostTensor> out;
  OpSpec both{"Resize", 13, {}, {x, HostTensor(), floats({1, 1, 2, 2}), ints({1, 1, 4, 4})}, {false, false, true, true}};
  Status st = run_op(both, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("exactly one of scales and sizes"), std::string::npos) << st.message();
  OpSpec runtime{"Resize", 13, {}, {x, HostTensor(), floats({1, 1, 2, 2})}, {false, false, false}};
  st = run_op(runtime, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("must be known at build time"), std::string::npos) << st.message();
}

TEST(MovementOps, OldOpsetForms) {
  std::mt19937 rng(111);
  HostTensor x = random_tensor(DType::kFloat32, {2, 3}, rng);
  const Shape xs = x.shape();
  {  // Concat-1: axis defaults to 1
    OpSpec s{"Concat", 1, {}, {x, x}, {false, false}};
    check(s, {map_ref(x, {2, 6}, [&](const std::vector<int64_t>& o) { return ravel({o[0], o[1] % 3}, xs); })});
  }
  {  // Tile-1: a scalar tile count along a scalar axis
    HostTensor tiles(DType::kInt64, {}), axis(DType::kInt64, {});
    tiles.as<int64_t>()[0] = 3;
    axis.as<int64_t>()[0] = 0;
    OpSpec s{"Tile", 1, {}, {x, tiles, axis}, {false, true, true}};
    check(s, {map_ref(x, {6, 3}, [&](const std::vector<int64_t>& o) { return ravel({o[0] % 2, o[1]}, xs); })});
  }
  {  // Pad-1: "paddings" attribute, edge mode
    OpSpec s{"Pad", 1, {}, {x}, {false}};
    s.attrs.set("paddings", std::vector<int64_t>{1, 0, 0, 2});
    s.attrs.set("mode", std::string("edge"));
    check(s, {map_ref(x, {3, 5}, [&](const std::vector<int64_t>& o) {
            return ravel({std::max<int64_t>(o[0] - 1, 0), std::min<int64_t>(o[1], 2)}, xs);
          })});
  }
  {  // Split-2: split attribute
    OpSpec s{"Split", 2, {}, {x}, {false}, 2};
    s.attrs.set("axis", int64_t{1});
    s.attrs.set("split", std::vector<int64_t>{1, 2});
    check(s, split_ref(x, 1, {1, 2}));
  }
  {  // Resize-10: scales input, nearest upsampling repeats (asymmetric, truncating)
    HostTensor x4 = random_tensor(DType::kFloat32, {1, 1, 2, 3}, rng);
    const Shape s4 = x4.shape();
    OpSpec s{"Resize", 10, {}, {x4, floats({1, 1, 2, 3})}, {false, true}};
    check(s, {map_ref(x4, {1, 1, 4, 9}, [&](const std::vector<int64_t>& o) { return ravel({0, 0, o[2] / 2, o[3] / 3}, s4); })});
  }
  {  // Transpose-1: default perm reverses the axes
    OpSpec s{"Transpose", 1, {}, {x}, {false}};
    check(s, {map_ref(x, {3, 2}, [&](const std::vector<int64_t>& o) { return ravel({o[1], o[0]}, xs); })});
  }
}

// ---- build-time constants and folding ----

ir::Value* add_input(ir::Graph& g, const std::string& name, DType dt, const Shape& s) {
  ir::Value* v = g.add_value(name);
  v->dtype = dt;
  v->shape = s;
  v->has_shape = true;
  v->is_graph_input = true;
  g.inputs.push_back(v);
  return v;
}

ir::Node* add_node(ir::Graph& g, const std::string& op, std::vector<ir::Value*> ins, const std::string& out) {
  ir::Node* n = g.add_node(op, op + "_" + out);
  n->inputs = std::move(ins);
  ir::Value* v = g.add_value(out);
  v->producer = n;
  n->outputs.push_back(v);
  return n;
}

ir::Value* add_const(ir::Graph& g, const std::string& out, HostTensor t) {
  ir::Node* n = add_node(g, "Constant", {}, out);
  n->attrs.set("value", std::make_shared<const HostTensor>(std::move(t)));
  return n->outputs[0];
}

TEST(MovementOps, ShapeGatherConcatReshapeFoldsAway) {
  ir::Graph g;
  g.name = "fold";
  g.opsets[""] = 13;
  ir::Value* x = add_input(g, "x", DType::kFloat32, {2, 3, 4});
  ir::Value* shape = add_node(g, "Shape", {x}, "shape")->outputs[0];
  ir::Value* idx = add_const(g, "idx", ints({0}));
  ir::Node* gather = add_node(g, "Gather", {shape, idx}, "batch");
  gather->attrs.set("axis", int64_t{0});
  ir::Value* minus1 = add_const(g, "minus1", ints({-1}));
  ir::Node* concat = add_node(g, "Concat", {gather->outputs[0], minus1}, "target");
  concat->attrs.set("axis", int64_t{0});
  ir::Node* reshape = add_node(g, "Reshape", {x, concat->outputs[0]}, "y");
  g.outputs.push_back(reshape->outputs[0]);

  BuildOptions opts;
  opts.device = "cpu";
  Plan plan;
  Status st = build_plan_from_graph(g, opts, &plan);
  ASSERT_TRUE(st.is_ok()) << st.message();
  for (const PlanNode& n : plan.nodes) {
    EXPECT_NE(n.op, "Shape");
    EXPECT_NE(n.op, "Gather");
    EXPECT_NE(n.op, "Concat");
    EXPECT_NE(n.op, "Constant");
  }
  ASSERT_EQ(plan.nodes.size(), 1u);
  EXPECT_EQ(plan.nodes[0].op, "Reshape");
  EXPECT_EQ(plan.tensors[plan.outputs[0]].shape, (Shape{2, 12}));
}

HostTensor const_output(const OpSpec& s) {
  std::vector<HostTensor> out;
  Plan plan;
  Status st = run_op(s, "cpu", &out, &plan);
  EXPECT_TRUE(st.is_ok()) << st.message();
  EXPECT_TRUE(plan.nodes.empty()) << s.op_type << " left a runtime node";
  return out.empty() ? HostTensor() : out[0];
}

TEST(MovementOps, ShapeSizeConstantOfShapeRangeConstant) {
  std::mt19937 rng(101);
  HostTensor x = random_tensor(DType::kFloat32, {2, 3, 4, 5}, rng);
  OpSpec sh{"Shape", 15, {}, {x}, {false}};
  EXPECT_TRUE(tensors_close(const_output(sh), ints({2, 3, 4, 5}), 0, 0));
  sh.attrs.set("start", int64_t{1});
  sh.attrs.set("end", int64_t{-1});
  EXPECT_TRUE(tensors_close(const_output(sh), ints({3, 4}), 0, 0));
  sh.attrs.set("start", int64_t{-10});
  sh.attrs.set("end", int64_t{10});
  EXPECT_TRUE(tensors_close(const_output(sh), ints({2, 3, 4, 5}), 0, 0));

  OpSpec sz{"Size", 13, {}, {x}, {false}};
  HostTensor n120(DType::kInt64, {});
  n120.as<int64_t>()[0] = 120;
  EXPECT_TRUE(tensors_close(const_output(sz), n120, 0, 0));

  OpSpec cos{"ConstantOfShape", 9, {}, {ints({2, 3})}, {true}};
  HostTensor zeros(DType::kFloat32, {2, 3});
  std::fill(zeros.as<float>(), zeros.as<float>() + 6, 0.f);
  EXPECT_TRUE(tensors_close(const_output(cos), zeros, 0, 0));
  HostTensor seven(DType::kInt32, {1});
  seven.as<int32_t>()[0] = 7;
  cos.attrs.set("value", std::make_shared<const HostTensor>(seven));
  HostTensor sevens(DType::kInt32, {2, 3});
  std::fill(sevens.as<int32_t>(), sevens.as<int32_t>() + 6, 7);
  EXPECT_TRUE(tensors_close(const_output(cos), sevens, 0, 0));

  HostTensor s0(DType::kInt64, {}), l0(DType::kInt64, {}), d0(DType::kInt64, {});
  s0.as<int64_t>()[0] = 10, l0.as<int64_t>()[0] = 1, d0.as<int64_t>()[0] = -3;
  OpSpec ri{"Range", 11, {}, {s0, l0, d0}, {true, true, true}};
  EXPECT_TRUE(tensors_close(const_output(ri), ints({10, 7, 4}), 0, 0));
  OpSpec rf{"Range", 11, {}, {scalar_f32(1.f), scalar_f32(2.f), scalar_f32(0.25f)}, {true, true, true}};
  EXPECT_TRUE(tensors_close(const_output(rf), floats({1.f, 1.25f, 1.5f, 1.75f}), 0, 0));

  OpSpec c{"Constant", 13, {}, {}, {}};
  c.attrs.set("value_floats", std::vector<float>{1.f, -2.f});
  EXPECT_TRUE(tensors_close(const_output(c), floats({1.f, -2.f}), 0, 0));
  OpSpec ci{"Constant", 13, {}, {}, {}};
  ci.attrs.set("value_ints", std::vector<int64_t>{4, 5, 6});
  EXPECT_TRUE(tensors_close(const_output(ci), ints({4, 5, 6}), 0, 0));
}

TEST(MovementOps, ValueDependentShapesNeedConstants) {
  std::vector<HostTensor> out;
  OpSpec r{"Range", 11, {}, {scalar_f32(0.f), scalar_f32(5.f), scalar_f32(1.f)}, {false, true, true}};
  Status st = run_op(r, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("Range_node"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("must be known at build time"), std::string::npos) << st.message();
  OpSpec cos{"ConstantOfShape", 9, {}, {ints({2, 3})}, {false}};
  st = run_op(cos, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("must be known at build time"), std::string::npos) << st.message();
  OpSpec c{"Constant", 13, {}, {}, {}};
  c.attrs.set("value_string", std::string("hi"));
  st = run_op(c, "cpu", &out);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kUnsupported) << st.message();
}

}  // namespace
}  // namespace kiln::test
