// manifest_from_yaml on hostile text (an imported archive's config.dump, a store's
// manifest.yaml): it parses or throws kcr::Error; what parses must write back as YAML that
// parses to the same manifest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/checkpoint_store.hpp"
#include "fuzz_util.hpp"

using namespace kcr::core;

// With KCR_FUZZ_SEEDS set (scripts/fuzz), exits at once: this target's seed is the
// manifest.yaml fuzz_archive_import writes.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (std::getenv("KCR_FUZZ_SEEDS")) std::exit(0);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  CheckpointManifest m;
  if (!kcr::fuzz::refused_or_ok("manifest_from_yaml",
                                [&] { m = manifest_from_yaml(text, "fuzz.yaml"); })) {
    return 0;
  }
  std::string yaml = manifest_to_yaml(m);
  CheckpointManifest back;
  if (!kcr::fuzz::refused_or_ok("manifest_from_yaml (round trip)",
                                [&] { back = manifest_from_yaml(yaml, "round-trip.yaml"); })) {
    kcr::fuzz::fail("a parsed manifest does not parse once written back:\n" + yaml);
  }
  if (manifest_to_yaml(back) != yaml) {
    kcr::fuzz::fail("the manifest changed on a round trip:\n" + yaml + "\n---\n" +
                    manifest_to_yaml(back));
  }
  return 0;
}
