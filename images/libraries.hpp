#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "images/elf.hpp"

namespace kcr::images {

// Finds the host file for SONAME needed by the ELF object at NEEDED_BY, whose
// DT_RUNPATH/RPATH is RUNPATH; nullopt when it does not exist.
using LibraryResolver = std::function<std::optional<std::string>(
    const std::string& soname, const std::vector<std::string>& runpath,
    const std::string& needed_by)>;

// Reads the dynamic dependencies of the ELF file at PATH.
using ElfDepsReader = std::function<ElfDeps(const std::string& path)>;

// Returns the ELF interpreters and shared libraries (host paths, sorted, without
// duplicates) that the executables ROOTS need, transitively. Throws kcr::Error naming
// the library and who needs it when the resolver cannot find one.
std::vector<std::string> library_closure(const std::vector<std::string>& roots,
                                         const ElfDepsReader& read_deps,
                                         const LibraryResolver& resolve);

// The resolver for the host: RUNPATH entries ($ORIGIN expanded), then /lib/x86_64-linux-gnu,
// /usr/lib/x86_64-linux-gnu, /lib64, /usr/lib.
std::optional<std::string> resolve_host_library(const std::string& soname,
                                                const std::vector<std::string>& runpath,
                                                const std::string& needed_by);

// Reads a host file and parses its ELF dependencies.
ElfDeps read_host_elf_deps(const std::string& path);

}  // namespace kcr::images
