// Files compiled into the binary (see cmake/embed.cmake), so that the single
// canopy binary can write a starter or example mesh anywhere.
#pragma once

#include <cstddef>
#include <vector>

namespace canopy::scaffold {

struct EmbeddedFile {
  const char* path;           // relative, '/'-separated
  const unsigned char* data;  // `size` bytes (followed by a NUL)
  std::size_t size;
};

const std::vector<EmbeddedFile>& InitFiles();  // examples/init
const std::vector<EmbeddedFile>& AcmeFiles();  // examples/acme
const std::vector<EmbeddedFile>& WebFiles();   // web/dist: the built web UI (may be empty)

}  // namespace canopy::scaffold
