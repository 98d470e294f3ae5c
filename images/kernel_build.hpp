#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/config.hpp"

namespace kcr::images {

// Debian's kernel source package as installed on the host.
struct KernelSource {
  std::string package;  // "linux-source-6.1"
  std::string version;  // "6.1.192-2", the package version
  std::string tarball;  // "/usr/src/linux-source-6.1.tar.xz"
};

// A kernel built from source with kcr's fragment, cached in {cache_dir}/kernels/KEY.
struct SourceKernel {
  std::string dir;
  std::string vmlinux;    // uncompressed ELF, booted through its PVH entry
  std::string bz_image;   // compressed, for boot loaders without PVH
  std::string config;     // the final .config
  std::string build_log;  // make's output
  std::string release;    // "6.1.192-kcr"
  std::string key;        // "6.1.192-2-<fragment sha256, 12 hex>"
};

// The cache key of a kernel built from source VERSION with FRAGMENT: a new source package
// or an edited fragment builds a new kernel.
std::string source_kernel_key(const std::string& version, std::string_view fragment);

// The installed linux-source package, or nullopt when there is none.
std::optional<KernelSource> find_kernel_source();

// The cached kernel built from the installed source with kcr's fragment, or nullopt when
// the source is not installed or that kernel was never built.
std::optional<SourceKernel> find_source_kernel(const core::Config& cfg);

// Builds the kernel find_source_kernel looks for (or returns it when cached): unpacks the
// source into {cache_dir}/kernels/.build-KEY, applies the fragment on allnoconfig, runs
// olddefconfig, refuses a config that dropped a fragment option, runs make with one job per
// core and keeps vmlinux, bzImage, config and the build log. PROGRESS gets a line every 30 s.
// Throws kcr::Error with a hint when a tool or the source package is missing or make fails.
SourceKernel build_source_kernel(const core::Config& cfg,
                                 const std::function<void(const std::string&)>& progress);

}  // namespace kcr::images
