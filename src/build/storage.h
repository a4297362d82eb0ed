// The file-system side effects of building and publishing, behind a seam (in the
// manner of leveldb's Env): tests put a FaultyStorage in front of the real one to
// fail or "crash" at any step and check that the store stays consistent.
//
// Paths are absolute. Implementations are safe to call from several threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace canopy::build {

class Storage {
 public:
  virtual ~Storage() = default;

  virtual void CreateDirectories(const std::string& path) = 0;
  // Writes `content` to `path` and flushes it to disk before returning.
  virtual void WriteFile(const std::string& path, const std::string& content) = 0;
  // Flushes a file written by someone else (DuckDB's COPY) to disk.
  virtual void SyncFile(const std::string& path) = 0;
  // Renames atomically and flushes the parent folder of `to`.
  virtual void Rename(const std::string& from, const std::string& to) = 0;
  virtual void RemoveAll(const std::string& path) = 0;
  // Removes the folder if it is empty, atomically (rmdir); leaves it otherwise, so a
  // folder another process is filling at that moment is never taken from under it.
  virtual void RemoveIfEmpty(const std::string& path) = 0;
  // Names (not paths) of the entries of a folder; empty when it does not exist.
  virtual std::vector<std::string> List(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;

  // The point where a publish becomes visible: `commit` runs the catalog transaction.
  // Real storage just runs it; a test storage may crash before or after it.
  virtual void Commit(const std::function<void()>& commit) = 0;
};

// The real file system.
std::unique_ptr<Storage> NewLocalStorage();

}  // namespace canopy::build
