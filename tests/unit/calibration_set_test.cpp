// Calibration samples: .npz (stored and deflated) and .npy files written by numpy load with the
// values numpy wrote, and every kind of bad sample is refused naming the file and the array.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "compiler/quant/calibration_set.h"
#include "tests/unit/unit_util.h"

namespace kiln {
namespace {

// Runs a numpy snippet with `d` bound to the folder: Debian's python3-numpy from setup.sh, or
// the Python named by KILN_TEST_PYTHON (the GPU machine has numpy only in its own Python).
void numpy(const std::string& dir, const std::string& code) {
  const std::string script = dir + "/make.py";
  std::ofstream(script) << "import numpy as np, sys\nd = sys.argv[1]\n" << code << "\n";
  const char* py = std::getenv("KILN_TEST_PYTHON");
  const std::string python = py && *py ? py : "/usr/bin/python3";
  ASSERT_EQ(std::system((python + " " + script + " " + dir).c_str()), 0) << code;
  std::remove(script.c_str());
}

const std::vector<CalibrationInput> kTwoInputs = {{"image", DType::kFloat32, {1, 3, 4, 4}},
                                                  {"ids", DType::kInt64, {1, 5}}};

TEST(CalibrationSet, LoadsNpzAndNpyWithNumpysValues) {
  const std::string dir = test::scratch_dir("calib_ok");
  numpy(dir,
        "img = np.arange(48, dtype=np.float32).reshape(1, 3, 4, 4) / 7\n"
        "np.savez(d + '/a.npz', image=img, ids=np.arange(5).reshape(1, 5))\n"
        "np.savez_compressed(d + '/b.npz', image=-img, ids=np.full((1, 5), 3))\n"
        "open(d + '/notes.txt', 'w').write('ignored')");
  std::vector<CalibrationSample> s;
  Status st = load_calibration_set(dir, kTwoInputs, &s);
  ASSERT_TRUE(st.is_ok()) << st.message();
  ASSERT_EQ(s.size(), 2u);
  EXPECT_FLOAT_EQ(s[0]["image"].as<float>()[47], 47.f / 7);
  EXPECT_FLOAT_EQ(s[1]["image"].as<float>()[47], -47.f / 7);  // deflated member
  EXPECT_EQ(s[0]["ids"].as<int64_t>()[4], 4);
  EXPECT_EQ(s[1]["ids"].as<int64_t>()[0], 3);

  const std::string single = test::scratch_dir("calib_npy");
  numpy(single, "np.save(d + '/0.npy', np.ones((2, 3), np.float32))\nnp.save(d + '/1.npy', np.zeros((2, 3), np.float32))");
  ASSERT_TRUE(load_calibration_set(single, {{"x", DType::kFloat32, {2, 3}}}, &s).is_ok());
  EXPECT_EQ(s.size(), 2u);
}

TEST(CalibrationSet, BadSamplesAreRefusedByName) {
  struct Case {
    const char* name;
    const char* numpy;
    const char* expect;
  };
  const Case cases[] = {
      {"wrong_name", "np.savez(d + '/s.npz', img=np.zeros((1,3,4,4), np.float32), ids=np.zeros((1,5), np.int64))",
       "array 'img' is not a model input"},
      {"missing_input", "np.savez(d + '/s.npz', image=np.zeros((1,3,4,4), np.float32))", "no array for input 'ids'"},
      {"wrong_shape", "np.savez(d + '/s.npz', image=np.zeros((1,3,5,4), np.float32), ids=np.zeros((1,5), np.int64))",
       "expected float32 1x3x4x4, got float32 1x3x5x4"},
      {"wrong_dtype", "np.savez(d + '/s.npz', image=np.zeros((1,3,4,4)), ids=np.zeros((1,5), np.int64))",
       "expected float32 1x3x4x4, got float64 1x3x4x4"},
      {"nan", "x = np.zeros((1,3,4,4), np.float32); x[0,1,2,3] = np.nan\n"
              "np.savez(d + '/s.npz', image=x, ids=np.zeros((1,5), np.int64))",
       "element 27 is NaN"},
      {"inf", "x = np.zeros((1,3,4,4), np.float32); x[0,0,0,1] = -np.inf\n"
              "np.savez(d + '/s.npz', image=x, ids=np.zeros((1,5), np.int64))",
       "element 1 is infinite"},
      {"npy_for_two_inputs", "np.save(d + '/s.npy', np.zeros((1,3,4,4), np.float32))", "the model has 2 inputs"},
      {"truncated", "np.savez_compressed(d + '/s.npz', image=np.zeros((1,3,4,4), np.float32), ids=np.zeros((1,5), np.int64))\n"
                    "b = open(d + '/s.npz', 'rb').read(); open(d + '/s.npz', 'wb').write(b[:len(b) // 2])",
       "s.npz"},
      {"not_a_zip", "open(d + '/s.npz', 'wb').write(b'hello, not a zip file at all')", "not an .npz (zip) archive"},
      {"empty", "pass", "has no .npz or .npy samples"},
  };
  for (const Case& c : cases) {
    const std::string dir = test::scratch_dir(std::string("calib_") + c.name);
    numpy(dir, c.numpy);
    std::vector<CalibrationSample> s;
    Status st = load_calibration_set(dir, kTwoInputs, &s);
    ASSERT_FALSE(st.is_ok()) << c.name;
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.name << ": " << st.message();
  }
  std::vector<CalibrationSample> s;
  EXPECT_EQ(load_calibration_set("/nonexistent/calib", kTwoInputs, &s).code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace kiln
