// The kernel .config parser and check (kcr image build --kernel-config, check-kernel):
// a user's file parses and is judged, or kcr::Error says why.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.hpp"
#include "images/kernel_config.hpp"

using namespace kcr::images;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  KernelConfig config;
  if (kcr::fuzz::refused_or_ok("parse_kernel_config",
                               [&] { config = parse_kernel_config(text, "fuzz.config"); })) {
    kcr::fuzz::refused_or_ok("check_kernel_config", [&] {
      auto check = check_kernel_config(config, kcr_kernel_fragment());
      describe_missing(check);
    });
  }
  return 0;
}
