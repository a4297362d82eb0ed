// Runs the spec cases in tests/specs/*.test against the real canopy binary.
//
// A case is one file: a base mesh, edits to it, the command to run and what it must
// print. Sections start with "=== ":
//
//   # what the case shows (comment lines start with '#')
//   === base design                 copy tests/specs/base/design (default); "none": empty folder
//   === edit PATH                   then pairs of lines "- old" / "+ new": `old` must occur
//                                   exactly once in PATH and is replaced by `new`;
//                                   \n in them stands for a line break
//   === write PATH                  the following lines become the file's content
//   === delete PATH
//   === symlink PATH -> TARGET      TARGET may start with {tmp}/ (a folder outside the mesh)
//   === run ARGS                    canopy ARGS, in the mesh folder (default: validate)
//   === exit N                      the exit code (default 1)
//   === stderr / === stdout         each following line must appear in that stream,
//                                   in this order (each may be a part of a line)
//   === no stderr PATTERN           PATTERN must not appear in stderr
//
// Usage: case_runner CANOPY_BINARY CASES_DIR
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {

std::string g_binary;
fs::path g_cases;

struct Section {
  std::string head;                // "edit", "write", ...
  std::string argument;            // the rest of the === line
  std::vector<std::string> lines;  // the lines after it
  int line = 0;                    // where it starts in the case file
};

std::vector<Section> ParseCase(const fs::path& file) {
  std::ifstream in(file);
  std::vector<Section> sections;
  std::string text;
  int number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (text.rfind("=== ", 0) == 0) {
      Section section;
      std::string rest = text.substr(4);
      auto space = rest.find(' ');
      section.head = rest.substr(0, space);
      section.argument = space == std::string::npos ? "" : rest.substr(space + 1);
      if (section.head == "no") {  // "no stderr PATTERN"
        auto second = section.argument.find(' ');
        section.head = "no " + section.argument.substr(0, second);
        section.argument = second == std::string::npos ? "" : section.argument.substr(second + 1);
      }
      section.line = number;
      sections.push_back(section);
    } else if (!sections.empty()) {
      // Inside write sections '#' is content; elsewhere it starts a comment.
      if (sections.back().head != "write" && text.rfind('#', 0) == 0) continue;
      sections.back().lines.push_back(text);
    }
  }
  return sections;
}

std::string ReadAll(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteAll(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << content;
}

// "\n" in an edit line stands for a line break, so an edit can span lines.
std::string Unescape(std::string text) {
  for (size_t at = text.find("\\n"); at != std::string::npos; at = text.find("\\n", at + 1)) {
    text.replace(at, 2, "\n");
  }
  return text;
}

std::string ShellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Checks that each of `expected` occurs in `output`, in order.
void ExpectInOrder(const std::string& stream, const std::string& output,
                   const std::vector<std::string>& expected) {
  size_t at = 0;
  for (const auto& line : expected) {
    if (line.empty()) continue;
    size_t found = output.find(line, at);
    if (found == std::string::npos) {
      ADD_FAILURE() << stream << " lacks (in order): " << line << "\n--- " << stream << " was:\n"
                    << output;
      return;
    }
    at = found + line.size();
  }
}

void RunCase(const fs::path& file) {
  const auto sections = ParseCase(file);
  const fs::path scratch = fs::temp_directory_path() / ("canopy-case-" + file.stem().string() +
                                                        "-" + std::to_string(::getpid()));
  fs::remove_all(scratch);
  const fs::path mesh = scratch / "mesh";
  fs::create_directories(mesh);

  std::string base = "design";
  for (const auto& s : sections) {
    if (s.head == "base") base = s.argument;
  }
  if (base != "none") {
    fs::copy(g_cases / "base" / base, mesh, fs::copy_options::recursive);
  }

  std::string args = "validate";
  int exit_code = 1;
  for (const auto& s : sections) {
    const fs::path target = mesh / s.argument;
    if (s.head == "edit") {
      std::string content = ReadAll(target);
      ASSERT_FALSE(content.empty())
          << file << ":" << s.line << ": nothing to edit at " << s.argument;
      for (size_t i = 0; i + 1 < s.lines.size(); i += 2) {
        ASSERT_EQ(s.lines[i].rfind("- ", 0), 0u) << file << ":" << s.line << ": want '- old'";
        ASSERT_EQ(s.lines[i + 1].rfind("+ ", 0), 0u) << file << ":" << s.line << ": want '+ new'";
        const std::string old_text = Unescape(s.lines[i].substr(2));
        const std::string new_text = Unescape(s.lines[i + 1].substr(2));
        const size_t at = content.find(old_text);
        ASSERT_NE(at, std::string::npos)
            << file << ":" << s.line << ": '" << old_text << "' is not in " << s.argument;
        ASSERT_EQ(content.find(old_text, at + 1), std::string::npos)
            << file << ":" << s.line << ": '" << old_text << "' occurs twice in " << s.argument;
        content.replace(at, old_text.size(), new_text);
      }
      WriteAll(target, content);
    } else if (s.head == "write") {
      std::string content;
      for (const auto& line : s.lines) content += line + "\n";
      WriteAll(target, content);
    } else if (s.head == "delete") {
      fs::remove_all(target);
    } else if (s.head == "symlink") {
      const auto arrow = s.argument.find(" -> ");
      ASSERT_NE(arrow, std::string::npos) << file << ":" << s.line << ": want 'PATH -> TARGET'";
      std::string link_target = s.argument.substr(arrow + 4);
      if (link_target.rfind("{tmp}/", 0) == 0) {
        link_target = (scratch / link_target.substr(6)).string();
        WriteAll(link_target, "secret,data\n1,2\n");
      }
      const fs::path link = mesh / s.argument.substr(0, arrow);
      fs::create_directories(link.parent_path());
      fs::remove(link);
      fs::create_symlink(link_target, link);
    } else if (s.head == "run") {
      args = s.argument;
    } else if (s.head == "exit") {
      exit_code = std::stoi(s.argument);
    }
  }

  const fs::path out = scratch / "stdout";
  const fs::path err = scratch / "stderr";
  const std::string command = "cd " + ShellQuote(mesh.string()) + " && env -u CANOPY_MESH " +
                              ShellQuote(g_binary) + " " + args + " >" + ShellQuote(out.string()) +
                              " 2>" + ShellQuote(err.string());
  const int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status)) << "canopy did not exit normally: " << command;
  const std::string stdout_text = ReadAll(out);
  const std::string stderr_text = ReadAll(err);
  EXPECT_EQ(WEXITSTATUS(status), exit_code) << "canopy " << args << "\n--- stdout:\n"
                                            << stdout_text << "--- stderr:\n"
                                            << stderr_text;
  for (const auto& s : sections) {
    if (s.head == "stderr") ExpectInOrder("stderr", stderr_text, s.lines);
    if (s.head == "stdout") ExpectInOrder("stdout", stdout_text, s.lines);
    if (s.head == "no stderr") {
      EXPECT_EQ(stderr_text.find(s.argument), std::string::npos)
          << "stderr should not hold '" << s.argument << "':\n"
          << stderr_text;
    }
  }
  // A crash or an internal error is never the expected answer.
  EXPECT_EQ(stderr_text.find("error: internal"), std::string::npos) << stderr_text;
  fs::remove_all(scratch);
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (argc != 3) {
    std::fprintf(stderr, "usage: case_runner CANOPY_BINARY CASES_DIR\n");
    return 2;
  }
  g_binary = fs::absolute(argv[1]).string();
  g_cases = fs::absolute(argv[2]);
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(g_cases)) {
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    ::testing::RegisterTest("SpecCase", file.stem().string().c_str(), nullptr, nullptr,
                            file.string().c_str(), 0, [file]() -> ::testing::Test* {
                              struct CaseTest : ::testing::Test {
                                fs::path path;
                                explicit CaseTest(fs::path p) : path(std::move(p)) {}
                                void TestBody() override { RunCase(path); }
                              };
                              return new CaseTest(file);
                            });
  }
  return RUN_ALL_TESTS();
}
