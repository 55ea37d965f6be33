// Moved to runtime/ops/linear_epilogue.h (the convention is shared by the compiler, both
// backends and the op rules); kept so includes of the old path still build.
#pragma once
#include "runtime/ops/linear_epilogue.h"
