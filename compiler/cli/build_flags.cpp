#include "compiler/cli/build_flags.h"

#include <cstdlib>

#include "compiler/quant/precision.h"

namespace kiln::cli {

Status build_api_status(kiln_status s, const std::string& what) {
  if (s == KILN_OK) return Status::ok();
  const std::string message = kiln_build_last_error();
  return Status(static_cast<StatusCode>(s), what.empty() ? message : what + ": " + message);
}

Status set_calibrator_flag(kiln_build_options* o, const std::string& c) {
  kiln_calibrator kind = KILN_CALIBRATOR_DEFAULT;
  double percentile = 0;
  if (c == "entropy") kind = KILN_CALIBRATOR_ENTROPY;
  else if (c == "minmax") kind = KILN_CALIBRATOR_MINMAX;
  else if (c == "mse") kind = KILN_CALIBRATOR_MSE;
  else if (c.compare(0, 10, "percentile") == 0) {
    kind = KILN_CALIBRATOR_PERCENTILE;
    if (c.size() > 10) {
      char* end = nullptr;
      percentile = c[10] == '=' ? std::strtod(c.c_str() + 11, &end) : -1;
      if (c[10] != '=' || c.size() == 11 || *end)
        return invalid_argument("--calibrator: '" + c + "' needs a number in (0, 100], as percentile=99.99");
    }
  } else {
    return invalid_argument("--calibrator: unknown calibrator '" + c + "' (entropy, minmax, mse or percentile[=P])");
  }
  return build_api_status(kiln_build_options_set_calibrator(o, kind, percentile));  // names the flag
}

Status set_fallback_precision_flag(kiln_build_options* o, const std::string& text) {
  FallbackPrecision f;
  KILN_TRY(parse_fallback_precision(text, &f));
  return build_api_status(kiln_build_options_set_fallback_precision(
      o, f == FallbackPrecision::kFp16 ? KILN_PRECISION_FP16 : KILN_PRECISION_FP32));
}

Status set_io_precision_flag(kiln_build_options* o, const std::string& text) {
  if (text != "fp32" && text != "fp16") return invalid_argument("--io-precision must be fp32 or fp16, got '" + text + "'");
  return build_api_status(kiln_build_options_set_io_precision(o, text == "fp16" ? KILN_PRECISION_FP16 : KILN_PRECISION_FP32));
}

}  // namespace kiln::cli
