#include "images/libraries.hpp"

#include <unistd.h>

#include <deque>
#include <set>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::images {

std::vector<std::string> library_closure(const std::vector<std::string>& roots,
                                         const ElfDepsReader& read_deps,
                                         const LibraryResolver& resolve) {
  std::set<std::string> found;
  std::set<std::string> visited(roots.begin(), roots.end());
  std::deque<std::string> pending(roots.begin(), roots.end());
  auto enqueue = [&](const std::string& path) {
    found.insert(path);
    if (visited.insert(path).second) pending.push_back(path);
  };
  while (!pending.empty()) {
    std::string path = pending.front();
    pending.pop_front();
    ElfDeps deps = read_deps(path);
    if (!deps.interp.empty()) enqueue(deps.interp);
    for (const auto& soname : deps.needed) {
      auto lib = resolve(soname, deps.runpath, path);
      if (!lib) {
        throw Error("shared library " + soname + " (needed by " + path + ") was not found",
                    "install the package that provides " + soname + " on this host");
      }
      enqueue(*lib);
    }
  }
  return {found.begin(), found.end()};
}

std::optional<std::string> resolve_host_library(const std::string& soname,
                                                const std::vector<std::string>& runpath,
                                                const std::string& needed_by) {
  if (soname.find('/') != std::string::npos) {
    return ::access(soname.c_str(), R_OK) == 0 ? std::optional(soname) : std::nullopt;
  }
  std::string origin = needed_by.substr(0, needed_by.rfind('/'));
  std::vector<std::string> dirs;
  for (auto dir : runpath) {
    for (const std::string token : {"$ORIGIN", "${ORIGIN}"}) {
      for (auto pos = dir.find(token); pos != std::string::npos; pos = dir.find(token)) {
        dir.replace(pos, token.size(), origin);
      }
    }
    dirs.push_back(dir);
  }
  for (const char* dir :
       {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"}) {
    dirs.emplace_back(dir);
  }
  for (const auto& dir : dirs) {
    std::string candidate = dir + "/" + soname;
    if (::access(candidate.c_str(), R_OK) == 0) return candidate;
  }
  return std::nullopt;
}

ElfDeps read_host_elf_deps(const std::string& path) {
  return parse_elf_deps(core::read_file(path), path);
}

}  // namespace kcr::images
