// SmoothQuant-style outlier migration for INT8 MatMul/Gemm layers (--smooth-quant[=ALPHA]).
//
// A few input channels of some linear layers carry activations far larger than the rest (the
// key and FFN-output projections of transformers): one per-tensor activation scale then leaves
// the ordinary channels a handful of int8 steps. For Y = X W (X [.., K], W [K, N] constant) the
// identity X W = (X / s) (s W), with s_k = max|X_k|^alpha / max|W_k,:|^(1-alpha) per input
// channel k, moves that spread into the weights, which are quantized per column anyway.
// quantize_ptq realizes X / s without an extra kernel: the QuantizeLinear before the integer
// MatMul becomes per-axis (last axis) with scale s_x * s_k, the weights become s_k W[k, :]
// before their per-column quantization, and QLinearMatMul keeps the scalar a_scale s_x, the
// range of X / s: acc[n] = sum_k q(X_k / (s_x s_k)) q(s_k W_kn / s_w[n]), real = s_x s_w[n] acc[n].
#pragma once
#include <memory>
#include <vector>

#include "runtime/core/tensor.h"

namespace kiln {

// Layers whose activation channel maxima spread less than this (largest / median) are left per
// tensor: they lose little to one scale, and a per-tensor QuantizeLinear can fuse into the
// previous integer layer's epilogue (compiler/passes/fuse_quantized.cpp), a per-axis one cannot.
constexpr double kSmoothMinSpread = 4.0;

// Largest over median of the per-channel maxima (1 when all are zero).
double channel_spread(const std::vector<double>& x_amax);

// s_k per input channel of w ([K, N] float32) from the activation's channel maxima (K of them);
// 1 where either side is all zero, so such channels pass unchanged.
std::vector<float> smooth_factors(const std::vector<double>& x_amax, const HostTensor& w, double alpha);

// max_k x_amax[k] / s[k]: the range of X / s.
double smoothed_amax(const std::vector<double>& x_amax, const std::vector<float>& s);

// w[k, :] *= s[k] (a new [K, N] float32 tensor).
std::shared_ptr<HostTensor> scale_weight_rows(const HostTensor& w, const std::vector<float>& s);

}  // namespace kiln
