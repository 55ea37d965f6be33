// The ONNX importer and the compiler behind it: protobuf bytes -> import -> shape inference,
// constant folding, fusion, lowering and the plan verifier, for the cpu device. External data
// resolves inside an empty folder, so a model can name any location without reaching a file.
#include <cstdlib>
#include <string>

#include "compiler/compiler.h"
#include "compiler/import/onnx/onnx_import.h"
#include "compiler/ir/graph.h"
#include "tests/fuzz/fuzz_util.h"

namespace {
std::string empty_dir() {
  static std::string dir = [] {
    char tmpl[] = "/tmp/kiln-fuzz-XXXXXX";
    const char* d = mkdtemp(tmpl);
    return std::string(d ? d : "/nonexistent");
  }();
  return dir;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  kiln::ir::Graph g;
  const kiln::Status imported = kiln::import_onnx_bytes(bytes, empty_dir(), &g);
  kiln::fuzz::check_refusal(imported);
  if (!imported) return 0;
  // Bound the work per input: the compile of a large graph is not what is being fuzzed here.
  if (g.nodes().size() > 64) return 0;
  kiln::BuildOptions o;
  o.device = "cpu";
  kiln::Plan p;
  kiln::fuzz::check_refusal(kiln::build_plan_from_graph(g, o, &p));
  return 0;
}
