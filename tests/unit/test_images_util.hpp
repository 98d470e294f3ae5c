#pragma once

#include <elf.h>

#include <cstring>
#include <initializer_list>
#include <string>

// Builders of small synthetic inputs for the guest image tests.
namespace kcr::images::test {

// A minimal ELF64 relocatable object with one named section holding DATA.
inline std::string make_elf_with_section(const std::string& name, const std::string& data) {
  std::string shstrtab = std::string("\0", 1) + name + '\0' + ".shstrtab" + '\0';
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_REL;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = 3;
  eh.e_shstrndx = 2;
  uint64_t data_off = sizeof(Elf64_Ehdr);
  uint64_t strtab_off = data_off + data.size();
  eh.e_shoff = strtab_off + shstrtab.size();
  Elf64_Shdr sh[3]{};
  sh[1].sh_name = 1;
  sh[1].sh_type = SHT_PROGBITS;
  sh[1].sh_offset = data_off;
  sh[1].sh_size = data.size();
  sh[2].sh_name = static_cast<Elf64_Word>(2 + name.size());
  sh[2].sh_type = SHT_STRTAB;
  sh[2].sh_offset = strtab_off;
  sh[2].sh_size = shstrtab.size();
  std::string out(reinterpret_cast<const char*>(&eh), sizeof eh);
  out += data;
  out += shstrtab;
  out.append(reinterpret_cast<const char*>(sh), sizeof sh);
  return out;
}

// A fake kernel module whose .modinfo holds FIELDS ("key=value").
inline std::string make_ko(std::initializer_list<std::string> fields) {
  std::string modinfo;
  for (const auto& f : fields) modinfo += f + '\0';
  return make_elf_with_section(".modinfo", modinfo);
}

}  // namespace kcr::images::test
