// Calibration samples for post-training quantization: a folder with one .npz file per sample
// whose arrays are named after the model inputs (a single-input model also takes plain .npy
// files), in sorted file order. Everything is checked against the model's inputs up front so
// a bad file is reported by name before any calibration work starts.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "runtime/core/status.h"
#include "runtime/core/tensor.h"

namespace kiln {

struct CalibrationInput {
  std::string name;
  DType dtype;
  Shape shape;
};

using CalibrationSample = std::map<std::string, HostTensor>;

// Errors: missing or empty folder; an array name that is not a model input or a missing input;
// a dtype or shape different from the model's; NaN or Inf in float data (file, array and
// element index named); unreadable or corrupted files.
Status load_calibration_set(const std::string& dir, const std::vector<CalibrationInput>& inputs,
                            std::vector<CalibrationSample>* samples);

// The same checks for samples given in memory (the C API's and Python's calibration sources);
// errors name the sample by its index.
Status check_calibration_samples(const std::vector<CalibrationSample>& samples,
                                 const std::vector<CalibrationInput>& inputs);

// The build's samples: `given` (in memory) when set, else the folder `dir`.
Status calibration_samples(const std::string& dir, const std::vector<CalibrationSample>* given,
                           const std::vector<CalibrationInput>& inputs, std::vector<CalibrationSample>* samples);

}  // namespace kiln
