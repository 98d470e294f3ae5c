// An OCI bundle's config.json (kcr run --bundle): parse_oci_config parses it or throws
// kcr::Error naming the problem, never anything else; what it accepts keeps the promises of
// core/oci_bundle.hpp.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/oci_bundle.hpp"
#include "fuzz_util.hpp"

using namespace kcr::core;

namespace {

bool absolute(const std::string& path) {
  return !path.empty() && path[0] == '/';
}

void check(const OciBundle& b) {
  using kcr::fuzz::fail;
  if (b.dir != "/bundle") fail("the bundle directory changed: " + b.dir);
  if (!absolute(b.root_path)) fail("root_path is not absolute: " + b.root_path);
  if (b.args.empty() || b.args[0].empty()) fail("accepted a config without a program to run");
  if (!absolute(b.cwd)) fail("cwd is not absolute: " + b.cwd);
  for (const auto& e : b.env) {
    if (e.find('=') == std::string::npos || e[0] == '=') fail("env entry is not KEY=VALUE: " + e);
  }
  for (const auto& m : b.mounts) {
    if (!absolute(m.destination)) fail("mount destination is not absolute: " + m.destination);
    const char* types[] = {"bind", "tmpfs", "proc", "sysfs", "devpts", "mqueue"};
    if (std::find(std::begin(types), std::end(types), m.type) == std::end(types)) {
      fail("accepted mount type " + m.type);
    }
    if (m.type == "bind" && !absolute(m.source)) fail("bind source is not absolute: " + m.source);
  }
  for (std::size_t i = 0; i < b.namespaces.size(); ++i) {
    if (std::count(b.namespaces.begin(), b.namespaces.end(), b.namespaces[i]) != 1) {
      fail("namespace listed twice: " + b.namespaces[i]);
    }
  }
  if (b.memory_limit != 0 && b.memory_limit < (std::uint64_t{4} << 20)) {
    fail("accepted a memory limit under 4 MiB");
  }
  if (b.pids_limit < 0 || b.pids_limit > 4194304) fail("accepted a pids limit out of range");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // read_oci_bundle refuses larger files before parsing.
  if (size > kMaxOciConfigBytes) return 0;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  OciBundle b;
  if (kcr::fuzz::refused_or_ok("parse_oci_config",
                               [&] { b = parse_oci_config(text, "/bundle"); })) {
    check(b);
  }
  return 0;
}
