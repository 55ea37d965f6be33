#include "compiler/quant/calibration_set.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>

#include "compiler/quant/npz.h"
#include "runtime/core/npy.h"

namespace kiln {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status check_finite(const HostTensor& t, const std::string& where) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v;
    if (t.dtype() == DType::kFloat32) v = t.as<float>()[i];
    else if (t.dtype() == DType::kFloat64) v = t.as<double>()[i];
    else return Status::ok();
    if (!std::isfinite(v))
      return invalid_argument(where + ": element " + std::to_string(i) + " is " + (std::isnan(v) ? "NaN" : "infinite") +
                              "; calibration data must be finite");
  }
  return Status::ok();
}

Status check_sample(const CalibrationSample& s, const std::vector<CalibrationInput>& inputs, const std::string& what) {
  for (const auto& [name, t] : s) {
    const std::string where = what + " array '" + name + "'";
    const std::string& key = name;  // clang before C++20 cannot capture a structured binding
    auto it = std::find_if(inputs.begin(), inputs.end(), [&](const CalibrationInput& i) { return i.name == key; });
    if (it == inputs.end()) {
      std::string names;
      for (const auto& i : inputs) names += (names.empty() ? "" : ", ") + i.name;
      return invalid_argument(where + " is not a model input (inputs: " + names + ")");
    }
    if (t.dtype() != it->dtype || t.shape() != it->shape)
      return invalid_argument(where + ": expected " + dtype_name(it->dtype) + " " + shape_str(it->shape) + ", got " +
                              dtype_name(t.dtype()) + " " + shape_str(t.shape()));
    KILN_TRY(check_finite(t, where));
  }
  for (const auto& i : inputs)
    if (!s.count(i.name)) return invalid_argument(what + " has no array for input '" + i.name + "'");
  return Status::ok();
}

}  // namespace

Status check_calibration_samples(const std::vector<CalibrationSample>& samples,
                                 const std::vector<CalibrationInput>& inputs) {
  if (samples.empty()) return invalid_argument("the calibration source gave no samples");
  for (size_t i = 0; i < samples.size(); ++i)
    KILN_TRY(check_sample(samples[i], inputs, "calibration sample #" + std::to_string(i)));
  return Status::ok();
}

Status calibration_samples(const std::string& dir, const std::vector<CalibrationSample>* given,
                           const std::vector<CalibrationInput>& inputs, std::vector<CalibrationSample>* samples) {
  if (!given) return load_calibration_set(dir, inputs, samples);
  KILN_TRY(check_calibration_samples(*given, inputs));
  *samples = *given;
  return Status::ok();
}

Status load_calibration_set(const std::string& dir, const std::vector<CalibrationInput>& inputs,
                            std::vector<CalibrationSample>* samples) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return not_found("calibration folder '" + dir + "' does not exist");
  std::vector<std::string> files;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (ends_with(name, ".npz") || ends_with(name, ".npy")) files.push_back(name);
    }
    ::closedir(d);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return invalid_argument("calibration folder '" + dir + "' has no .npz or .npy samples");

  samples->clear();
  for (const std::string& file : files) {
    const std::string path = dir + "/" + file;
    CalibrationSample s;
    if (ends_with(file, ".npy")) {
      if (inputs.size() != 1)
        return invalid_argument("calibration sample '" + path + "' is a .npy file, but the model has " +
                                std::to_string(inputs.size()) + " inputs: use one .npz per sample with an array per input");
      KILN_TRY(read_npy(path, &s[inputs[0].name]));
    } else {
      KILN_TRY(read_npz(path, &s));
    }
    KILN_TRY(check_sample(s, inputs, "calibration sample '" + path + "'"));
    samples->push_back(std::move(s));
  }
  return Status::ok();
}

}  // namespace kiln
