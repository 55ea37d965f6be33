// The calibration cache's record of the layer check: which layers it kept in FP32 (format 5).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>

#include "compiler/quant/calibrate.h"
#include "tests/unit/unit_util.h"

namespace kiln::test {
namespace {

TEST(CalibrationCache, KeepsTheLayerCheckDecisionsAsVersion5) {
  const std::string path = ::testing::TempDir() + "kiln_cache_v5.cache";
  std::map<std::string, TensorRange> in;
  in["x"].amax = 3;
  in["x"].channel_mean = {0.5};
  const std::set<std::string> kept = {"conv 1", "gemm"};
  ASSERT_TRUE(write_calibration_cache(path, "entropy", in, kept).is_ok());
  {
    std::ifstream f(path);
    std::string header;
    std::getline(f, header);
    EXPECT_EQ(header, "kiln-calibration-cache 5");
  }
  std::map<std::string, TensorRange> out;
  std::set<std::string> got = {"stale"};
  Status st = read_calibration_cache(path, "entropy", &out, &got);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(got, kept);
  EXPECT_EQ(out["x"].channel_mean, in["x"].channel_mean);
  // Without kept layers the cache stays at the version its other lines need.
  ASSERT_TRUE(write_calibration_cache(path, "entropy", in).is_ok());
  ASSERT_TRUE(read_calibration_cache(path, "entropy", &out, &got).is_ok());
  EXPECT_TRUE(got.empty());
  const std::pair<std::string, std::string> bad[] = {
      {"kiln-calibration-cache 5\ncalibrator minmax\n0x1p+1 0x0p+0 x\nkeep \n", "a keep line without a node name"},
      {"kiln-calibration-cache 4\ncalibrator minmax\n0x1p+1 0x0p+0 x\nkeep conv\n", "a line without a tensor name"},
  };
  for (const auto& [body, why] : bad) {
    write_checksummed_cache(path, body);
    st = read_calibration_cache(path, "minmax", &out, &got);
    EXPECT_FALSE(st.is_ok()) << body;
    EXPECT_NE(st.message().find(why), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace kiln::test
