// The one error model of Canopy (see docs/ARCHITECTURE.md, "Errors").
//
// - An operation that cannot go on throws canopy::Error with an ErrorCode.
//   Callers at the edge (the CLI's main, later the HTTP server) catch it and map
//   the code to an exit code / HTTP status with the functions below, in one place.
// - Problems a user should see all at once (a spec with ten mistakes) are not
//   exceptions: they are collected as Diagnostics (diagnostics.h) and the
//   operation reports them together.
#pragma once

#include <stdexcept>
#include <string>

namespace canopy {

enum class ErrorCode {
  kUsage,             // the command line or request is malformed: exit 2, HTTP 400
  kInvalidInput,      // a spec, file or document the user gave is wrong: exit 1, HTTP 400
  kNotFound,          // a named thing (product, port, file) does not exist: exit 1, HTTP 404
  kConflict,          // the thing exists already / state forbids it: exit 1, HTTP 409
  kUnauthenticated,   // no valid credentials (a missing, forged or revoked token): exit 3, HTTP 401
  kPermissionDenied,  // the principal may not do this: exit 3, HTTP 403
  kFailed,            // the operation ran and failed (build, check, engine): exit 1, HTTP 500
  kInternal,          // a bug in Canopy: exit 1, HTTP 500
};

// An error that ends the operation. `hint` is the fix, when one is known.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message, std::string hint = {})
      : std::runtime_error(message), code_(code), hint_(std::move(hint)) {}

  ErrorCode code() const { return code_; }
  const std::string& hint() const { return hint_; }

 private:
  ErrorCode code_;
  std::string hint_;
};

// Process exit code for an error code (DESIGN §5: 0 ok, 1 failed, 2 usage, 3 denied).
int ExitCodeFor(ErrorCode code);

// HTTP status for an error code (DESIGN §6).
int HttpStatusFor(ErrorCode code);

// A short stable name ("not_found") used in JSON error bodies.
const char* ErrorCodeName(ErrorCode code);

}  // namespace canopy
