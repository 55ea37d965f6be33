// kiln::Status: the one error type inside kiln. Every failure carries a code (mapped 1:1 onto the
// C API's kiln_status) and a message that names the thing that failed (file, node, tensor).
#pragma once
#include <string>
#include <utility>

namespace kiln {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // caller passed something wrong (shape, dtype, name, flag)
  kInvalidPlan = 2,      // plan file truncated, corrupted or inconsistent
  kInvalidModel = 3,     // ONNX model malformed
  kUnsupported = 4,      // op, dtype, attribute or opset kiln does not implement
  kNotFound = 5,         // file, tensor, device
  kDevice = 6,           // OpenCL / CLBlast failure
  kOutOfMemory = 7,      // host or device allocation failed
  kIo = 8,               // reading or writing a file failed
  kInternal = 9,         // a kiln bug
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return Status(); }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prefixes context ("node conv1: ") so errors read from the outside in.
  Status with_context(const std::string& context) const {
    if (is_ok()) return *this;
    return Status(code_, context + ": " + message_);
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return Status(StatusCode::kInvalidArgument, std::move(m)); }
inline Status invalid_plan(std::string m) { return Status(StatusCode::kInvalidPlan, std::move(m)); }
inline Status invalid_model(std::string m) { return Status(StatusCode::kInvalidModel, std::move(m)); }
inline Status unsupported(std::string m) { return Status(StatusCode::kUnsupported, std::move(m)); }
inline Status not_found(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
inline Status device_error(std::string m) { return Status(StatusCode::kDevice, std::move(m)); }
inline Status out_of_memory(std::string m) { return Status(StatusCode::kOutOfMemory, std::move(m)); }
inline Status io_error(std::string m) { return Status(StatusCode::kIo, std::move(m)); }
inline Status internal_error(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }

}  // namespace kiln

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` yields a failed Status.
#define KILN_TRY(expr)                                         \
  do {                                                         \
    ::kiln::Status kiln_try_status_ = (expr);                  \
    if (!kiln_try_status_.is_ok()) return kiln_try_status_;   \
  } while (0)

// Same, adding context to the message.
#define KILN_TRY_CTX(expr, ctx)                                          \
  do {                                                                   \
    ::kiln::Status kiln_try_status_ = (expr);                            \
    if (!kiln_try_status_.is_ok()) return kiln_try_status_.with_context(ctx); \
  } while (0)

#define KILN_CHECK_ARG(cond, msg)                         \
  do {                                                    \
    if (!(cond)) return ::kiln::invalid_argument(msg);    \
  } while (0)
