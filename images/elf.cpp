#include "images/elf.hpp"

#include <elf.h>

#include <cstring>

#include "core/error.hpp"

namespace kcr::images {

namespace {

template <typename T>
T read_at(std::string_view bytes, uint64_t offset, const std::string& what) {
  if (offset > bytes.size() || bytes.size() - offset < sizeof(T)) {
    throw Error(what + ": truncated ELF file");
  }
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

Elf64_Ehdr read_header(std::string_view bytes, const std::string& what) {
  if (bytes.size() < sizeof(Elf64_Ehdr) || std::memcmp(bytes.data(), ELFMAG, SELFMAG) != 0) {
    throw Error(what + ": not an ELF file");
  }
  if (bytes[EI_CLASS] != ELFCLASS64 || bytes[EI_DATA] != ELFDATA2LSB) {
    throw Error(what + ": not a 64-bit little-endian ELF file");
  }
  return read_at<Elf64_Ehdr>(bytes, 0, what);
}

std::string c_string_at(std::string_view bytes, uint64_t offset, const std::string& what) {
  if (offset >= bytes.size()) throw Error(what + ": string offset outside the file");
  auto end = bytes.find('\0', offset);
  if (end == std::string_view::npos) throw Error(what + ": unterminated string");
  return std::string(bytes.substr(offset, end - offset));
}

std::vector<std::string> split_path_list(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(':', start);
    if (end == std::string::npos) end = list.size();
    if (end > start) out.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

ElfDeps parse_elf_deps(std::string_view bytes, const std::string& what) {
  Elf64_Ehdr eh = read_header(bytes, what);
  std::vector<Elf64_Phdr> phdrs;
  for (unsigned i = 0; i < eh.e_phnum; ++i) {
    phdrs.push_back(read_at<Elf64_Phdr>(bytes, eh.e_phoff + uint64_t{i} * eh.e_phentsize, what));
  }
  // DT_STRTAB is a virtual address: map it back to a file offset through PT_LOAD.
  auto vaddr_to_offset = [&](uint64_t vaddr) -> uint64_t {
    for (const auto& ph : phdrs) {
      if (ph.p_type == PT_LOAD && vaddr >= ph.p_vaddr && vaddr < ph.p_vaddr + ph.p_filesz) {
        return vaddr - ph.p_vaddr + ph.p_offset;
      }
    }
    throw Error(what + ": DT_STRTAB address is not in a loaded segment");
  };

  ElfDeps deps;
  for (const auto& ph : phdrs) {
    if (ph.p_type == PT_INTERP) deps.interp = c_string_at(bytes, ph.p_offset, what);
  }
  for (const auto& ph : phdrs) {
    if (ph.p_type != PT_DYNAMIC) continue;
    uint64_t strtab = 0;
    std::vector<uint64_t> needed, rpath, runpath;
    for (uint64_t off = ph.p_offset; off + sizeof(Elf64_Dyn) <= ph.p_offset + ph.p_filesz;
         off += sizeof(Elf64_Dyn)) {
      auto dyn = read_at<Elf64_Dyn>(bytes, off, what);
      if (dyn.d_tag == DT_NULL) break;
      if (dyn.d_tag == DT_STRTAB) strtab = dyn.d_un.d_ptr;
      if (dyn.d_tag == DT_NEEDED) needed.push_back(dyn.d_un.d_val);
      if (dyn.d_tag == DT_RPATH) rpath.push_back(dyn.d_un.d_val);
      if (dyn.d_tag == DT_RUNPATH) runpath.push_back(dyn.d_un.d_val);
    }
    if (needed.empty() && rpath.empty() && runpath.empty()) break;
    if (strtab == 0) throw Error(what + ": dynamic section without DT_STRTAB");
    uint64_t base = vaddr_to_offset(strtab);
    for (auto n : needed) deps.needed.push_back(c_string_at(bytes, base + n, what));
    // The loader ignores DT_RPATH when DT_RUNPATH is present.
    for (auto r : runpath.empty() ? rpath : runpath) {
      for (auto& dir : split_path_list(c_string_at(bytes, base + r, what))) {
        deps.runpath.push_back(dir);
      }
    }
    break;
  }
  return deps;
}

ElfSection find_elf_section(std::string_view bytes, const std::string& section,
                            const std::string& what) {
  Elf64_Ehdr eh = read_header(bytes, what);
  if (eh.e_shoff == 0 || eh.e_shnum == 0) return {};
  auto shdr = [&](unsigned i) {
    return read_at<Elf64_Shdr>(bytes, eh.e_shoff + uint64_t{i} * eh.e_shentsize, what);
  };
  if (eh.e_shstrndx >= eh.e_shnum) throw Error(what + ": bad section name table index");
  Elf64_Shdr names = shdr(eh.e_shstrndx);
  for (unsigned i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr sh = shdr(i);
    if (c_string_at(bytes, names.sh_offset + sh.sh_name, what) != section) continue;
    if (sh.sh_type == SHT_NOBITS) return {true, {}};
    if (sh.sh_offset > bytes.size() || bytes.size() - sh.sh_offset < sh.sh_size) {
      throw Error(what + ": section " + section + " extends past the end of the file");
    }
    return {true, bytes.substr(sh.sh_offset, sh.sh_size)};
  }
  return {};
}

}  // namespace kcr::images
