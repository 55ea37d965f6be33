// KILN_CPU_GUARD=1 (ctest cpu_fast_guarded): the cpu device's scratch buffers carry a guard
// behind their end, and a kernel that writes past what it asked for fails its node.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime/backends/cpu/dnnl_common.h"

namespace kiln {
namespace {

TEST(ScratchGuard, NamesTheSlotWrittenPastItsEnd) {
  if (!dnnl_util::guard_scratch()) GTEST_SKIP() << "runs with KILN_CPU_GUARD=1 (ctest cpu_fast_guarded)";
  FastRunContext ctx;
  auto* p = static_cast<uint8_t*>(ctx.scratch(3, 100));  // 128 bytes after rounding
  std::memset(p, 1, 128);
  EXPECT_TRUE(ctx.check_guards().is_ok()) << "writes within the buffer are fine";
  p[128 + 9] = 0;  // the tenth byte past the end
  const Status st = ctx.check_guards();
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("10 bytes past scratch slot 3 (128 bytes)"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace kiln
