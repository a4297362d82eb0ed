// The files a sandboxed engine may read, under names nobody else knows.
//
// An engine that runs SQL Canopy did not write (a reader's query, a domain's models)
// reads port files only through the governed views made for it. So that no path to
// the raw file exists for that SQL even to try, the engine is not allowed the file's
// own path: it is allowed one link to it, made for this engine alone, in a folder
// with a 128-bit random name that appears only in the engine's view definitions
// (which the guard never lets a reader see). Hard links where the file system allows
// (the data stays readable for the engine's life even if a build cleans the version
// up), symbolic links otherwise.
#pragma once

#include <string>
#include <vector>

namespace canopy::governance {

class FileLinks {
 public:
  // Links each of `files` (absolute paths) under `storage_root`/sandboxes. Throws
  // Error(kFailed) when the links cannot be made.
  FileLinks(const std::string& storage_root, const std::vector<std::string>& files);
  // Removes the links and their folder.
  ~FileLinks();
  FileLinks(const FileLinks&) = delete;
  FileLinks& operator=(const FileLinks&) = delete;

  // The link standing for files[i].
  const std::string& Link(size_t i) const { return links_.at(i); }
  const std::vector<std::string>& links() const { return links_; }

 private:
  std::string folder_;
  std::vector<std::string> links_;
};

}  // namespace canopy::governance
