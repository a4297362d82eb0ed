// A small driver for the fuzz targets in builds without libFuzzer (gcc, `make test`):
// it replays every file of the given corpus folders through LLVMFuzzerTestOneInput,
// then, for a time budget, runs simple random mutations of them (byte flips, inserts,
// erasures, repeated and spliced pieces) from a fixed seed.
//
// This is a replay plus a short blind random run, not coverage-guided fuzzing: it
// catches regressions of the cases in the corpus and shallow crashes. `make fuzz`
// (libFuzzer with ASan and UBSan, tests/fuzz/README.md) is the real thing.
//
//   fuzz_X_replay [--seconds=S] [--seed=N] [--max-len=B] DIR_OR_FILE...
//
// When an input crashes (a signal, or abort() from a finding or an escaped exception),
// its bytes are written to ./replay-crash-<target> before the process dies, and the
// path is printed.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace fs = std::filesystem;

// The input being run, for the crash handler.
const uint8_t* g_data = nullptr;
size_t g_size = 0;
char g_crash_path[512] = "replay-crash";

void WriteAll(int fd, const void* data, size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n <= 0) return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

extern "C" void OnCrash(int signal) {
  const int fd = ::open(g_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    if (g_data != nullptr) WriteAll(fd, g_data, g_size);
    ::close(fd);
  }
  static const char message[] = "\nreplay: the crashing input is in ";
  WriteAll(2, message, sizeof message - 1);
  WriteAll(2, g_crash_path, std::strlen(g_crash_path));
  WriteAll(2, "\n", 1);
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

int Run(const std::string& input) {
  g_data = reinterpret_cast<const uint8_t*>(input.data());
  g_size = input.size();
  LLVMFuzzerTestOneInput(g_data, g_size);
  g_data = nullptr;
  return 0;
}

std::string Mutate(const std::vector<std::string>& corpus, std::mt19937_64& random,
                   size_t max_len) {
  auto pick = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(random() % n); };
  std::string out = corpus[pick(corpus.size())];
  const size_t steps = 1 + pick(4);
  for (size_t step = 0; step < steps; ++step) {
    switch (pick(6)) {
      case 0:  // flip a bit
        if (!out.empty()) out[pick(out.size())] ^= static_cast<char>(1u << pick(8));
        break;
      case 1:  // insert a random byte (often a printable or structural one)
        out.insert(out.begin() + static_cast<std::ptrdiff_t>(pick(out.size() + 1)),
                   static_cast<char>(pick(2) == 0 ? "\0\n\r\t '\"\\;:-{}[]()$,#&*|>"[pick(24)]
                                                  : static_cast<char>(random())));
        break;
      case 2:  // erase a range
        if (!out.empty()) {
          const size_t at = pick(out.size());
          out.erase(at, 1 + pick(std::min<size_t>(16, out.size() - at)));
        }
        break;
      case 3:  // repeat a piece
        if (!out.empty()) {
          const size_t at = pick(out.size());
          const std::string piece = out.substr(at, 1 + pick(32));
          out.insert(pick(out.size() + 1), piece);
        }
        break;
      case 4: {  // splice in a piece of another input
        const std::string& other = corpus[pick(corpus.size())];
        if (!other.empty()) {
          const size_t at = pick(other.size());
          out.insert(pick(out.size() + 1), other.substr(at, 1 + pick(64)));
        }
        break;
      }
      default:  // overwrite a byte with a random one
        if (!out.empty()) out[pick(out.size())] = static_cast<char>(random());
        break;
    }
  }
  if (out.size() > max_len) out.resize(max_len);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  uint64_t seed = 1;
  size_t max_len = 8192;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--seconds=", 0) == 0) {
      seconds = std::stod(arg.substr(10));
    } else if (arg.rfind("--seed=", 0) == 0) {
      seed = std::stoull(arg.substr(7));
    } else if (arg.rfind("--max-len=", 0) == 0) {
      max_len = std::stoull(arg.substr(10));
    } else if (fs::is_directory(arg)) {
      for (const auto& entry : fs::directory_iterator(arg)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
    } else if (fs::is_regular_file(arg)) {
      files.emplace_back(arg);
    }
  }
  std::sort(files.begin(), files.end());
  const std::string target = fs::path(argv[0]).filename().string();
  std::snprintf(g_crash_path, sizeof g_crash_path, "replay-crash-%s", target.c_str());
  for (int signal : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::signal(signal, OnCrash);

  std::vector<std::string> corpus;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    Run(corpus.back());
  }
  std::printf("%s: replayed %zu inputs\n", target.c_str(), corpus.size());
  if (corpus.empty()) corpus.emplace_back();

  std::mt19937_64 random(seed);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  size_t runs = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    Run(Mutate(corpus, random, max_len));
    ++runs;
  }
  std::printf("%s: %zu random mutations in %.1f s (seed %llu), no crash\n", target.c_str(), runs,
              seconds, static_cast<unsigned long long>(seed));
  return 0;
}
