// The YAML configuration file (kcr.yaml, KCR_CONFIG): it parses or throws
// kcr::Error naming the problem, never anything else.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/config.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  kcr::fuzz::refused_or_ok(
      "parse_config", [&] { kcr::core::parse_config(text, "fuzz.yaml", kcr::core::Config{}); });
  kcr::fuzz::refused_or_ok("parse_memory_limit",
                           [&] { kcr::core::parse_memory_limit(text.substr(0, 40), "--memory"); });
  return 0;
}
