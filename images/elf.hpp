#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kcr::images {

// What the dynamic loader needs to run an ELF executable or shared library.
struct ElfDeps {
  std::string interp;                // PT_INTERP, empty for static binaries and libraries
  std::vector<std::string> needed;   // DT_NEEDED in file order
  std::vector<std::string> runpath;  // DT_RUNPATH, else DT_RPATH, split at ':'
};

// Parses an ELF64 little-endian file image; throws kcr::Error naming WHAT when
// BYTES is not such a file or is truncated.
ElfDeps parse_elf_deps(std::string_view bytes, const std::string& what);

// One section's bytes, viewing into the file image they came from.
struct ElfSection {
  bool found = false;
  std::string_view data;
};

// Returns the section named SECTION (e.g. ".modinfo") of an ELF64 file image;
// found=false when the file has no such section.
ElfSection find_elf_section(std::string_view bytes, const std::string& section,
                            const std::string& what);

}  // namespace kcr::images
