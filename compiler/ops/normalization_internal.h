// Shape rules of the normalization family, split by op group (softmax and norms in
// normalization.cpp, reductions in normalization_reduce.cpp, pooling in normalization_pool.cpp).
#pragma once
#include "compiler/ops/op_schema.h"

namespace kiln::norm_schema {

Status infer_reduce(InferContext& c);
Status infer_global_pool(InferContext& c);
Status infer_max_pool(InferContext& c);
Status infer_average_pool(InferContext& c);

}  // namespace kiln::norm_schema
