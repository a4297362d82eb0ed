#pragma once

// Where the tests find the repository's tests/ folder, ../shared beside the checkout and
// the programs they run. CMake writes the values into one generated file per build
// (tests/CMakeLists.txt, build_paths.cpp in the build folder), so that no other test
// source's compilation depends on where the checkout is: ccache then serves a fresh
// clone elsewhere (CI's) the objects of an earlier one.
namespace canopy::test {

extern const char* const kTestDir;       // <checkout>/tests
extern const char* const kSharedDir;     // <checkout>/../shared (may not exist)
extern const char* const kCanopyBinary;  // the canopy program of this build
extern const char* const kFaultRunner;   // canopy_fault_runner of this build

}  // namespace canopy::test
