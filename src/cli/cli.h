// The canopy command line (DESIGN §5). main() only calls RunCli.
#pragma once

namespace canopy::cli {

// Parses the arguments, runs the command and returns the process exit code
// (0 ok, 1 failed, 2 usage, 3 permission denied). Never throws.
int RunCli(int argc, char** argv);

}  // namespace canopy::cli
