// Host tensors: HostTensor owns its bytes, TensorView borrows them. Kernels take views.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/core/dtype.h"
#include "runtime/core/shape.h"

namespace kiln {

struct TensorView {
  DType dtype = DType::kUndefined;
  Shape shape;
  void* data = nullptr;

  int64_t numel() const { return shape_numel(shape); }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  template <typename T> T* as() const { return static_cast<T*>(data); }
};

class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DType dtype, Shape shape)
      : dtype_(dtype), shape_(std::move(shape)),
        bytes_(static_cast<size_t>(shape_numel(shape_)) * dtype_size(dtype_)) {}

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t size_bytes() const { return bytes_.size(); }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  template <typename T> T* as() { return reinterpret_cast<T*>(bytes_.data()); }
  template <typename T> const T* as() const { return reinterpret_cast<const T*>(bytes_.data()); }
  TensorView view() { return TensorView{dtype_, shape_, bytes_.data()}; }
  TensorView view() const { return TensorView{dtype_, shape_, const_cast<uint8_t*>(bytes_.data())}; }
  // Same bytes, new shape of equal element count (caller checks).
  void reshape(Shape s) { shape_ = std::move(s); }
  std::vector<uint8_t>& bytes() { return bytes_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  DType dtype_ = DType::kUndefined;
  Shape shape_;
  std::vector<uint8_t> bytes_;
};

// Reads element i of an integer-typed tensor (int32/int64/uint8/bool...) as int64; used for
// shape-carrying inputs.
int64_t tensor_int_at(const TensorView& t, int64_t i);
// Reads element i of any numeric tensor as double.
double tensor_double_at(const TensorView& t, int64_t i);
// Stores `v` as element i of any numeric tensor: converted as static_cast does for integers,
// rounded to nearest for the floating types (FP8 saturating, as ONNX's Cast by default).
void tensor_store_double(HostTensor& t, int64_t i, double v);
// Whole integer tensor as int64 values (shape inputs: Reshape shape, Slice starts, ...).
std::vector<int64_t> tensor_to_int64s(const TensorView& t);
// `t` as float32 or float16 (a plan built with --io-precision fp16 takes and gives float16):
// converted when the dtypes differ, rounded to nearest even; otherwise `t` itself (moved in,
// moved out: no copy), as are other dtypes.
HostTensor to_float_dtype(HostTensor t, DType to);

}  // namespace kiln
