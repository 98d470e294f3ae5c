#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"

namespace kcr::images {

// Where an image's kernel comes from: Debian's cloud kernel package (modules loaded by the
// init) or kcr's own build of Debian's kernel source (everything built in).
enum class KernelFlavor { debian, source, custom };

const char* to_string(KernelFlavor flavor);

// A built guest image: the kernel and initramfs a VM boots, described by its manifest.
struct ImageInfo {
  std::string name;            // "default"
  std::string dir;             // {cache_dir}/images/{name}
  std::string kernel;          // path of the kernel to pass to -kernel (vmlinuz or vmlinux)
  std::string initrd;          // path of the uncompressed cpio newc initramfs
  std::string kernel_release;  // e.g. 6.1.0-56-cloud-amd64
  std::string kernel_package;  // e.g. linux-image-6.1.0-56-cloud-amd64 (+ version)
  KernelFlavor kernel_flavor = KernelFlavor::debian;
  std::string criu_version;  // e.g. 3.17.1
  std::string agent_version;
  std::string content_hash;  // sha256 hex of all inputs
  std::string created;       // ISO-8601 UTC
  uint64_t initrd_bytes = 0;
  uint64_t kernel_bytes = 0;
};

// What to build.
struct BuildOptions {
  std::string name = "default";
  std::string agent_path;  // kcr-agent binary to put in the image (required)
  // kcr-scenario binary to put in the image as /usr/bin/kcr-scenario. Empty: look next to
  // the agent (AGENT_DIR/kcr-scenario, then AGENT_DIR/../scenario/kcr-scenario).
  std::string scenario_path;
  std::string kernel_deb;  // optional: use this .deb instead of downloading
  // A CRIU binary of the user's own instead of the host's criu package: it
  // and its shared-library closure go into the image (kcr image build --criu).
  std::string criu_path;
  // A kernel of the user's own (kcr image build --kernel-image/--kernel-config): a bzImage or
  // vmlinux, its .config (checked like every kernel's), and optionally the tree its modules
  // were installed into (make modules_install INSTALL_MOD_PATH=DIR, or DIR/lib/modules/R).
  std::string kernel_image, kernel_config, kernel_modules;
  // Which kernel; nullopt picks the source kernel when one is built and cached, else Debian's.
  std::optional<KernelFlavor> kernel;
  bool force = false;  // rebuild even if inputs are unchanged
};

struct BuildResult {
  ImageInfo image;
  bool rebuilt;  // false when an identical image already existed and nothing was written
};

// Builds the guest image OPTS.name under {cache_dir}/images from a kernel (Debian's cloud
// kernel, or one built from source, see kernel_build.hpp) and the host's busybox, criu, tar
// and nft. Refuses a kernel whose config lacks an option kcr requires. Progress lines ("fetching
// linux-image-...", "writing initramfs (41 MB)") go to PROGRESS. Throws kcr::Error with a hint on
// failure.
BuildResult build_image(const core::Config& cfg, const BuildOptions& opts,
                        const std::function<void(const std::string&)>& progress);

// A kernel config and where it came from ("linux-image-... 6.1.192-2", an image's name).
struct KernelConfigText {
  std::string source;
  std::string text;
};

// The config inside Debian's cloud kernel package (KERNEL_DEB, or fetched as build_image does).
KernelConfigText debian_kernel_config(const core::Config& cfg, const std::string& kernel_deb,
                                      const std::function<void(const std::string&)>& progress);

// The config of the kernel in image NAME; throws kcr::Error when the image has none.
KernelConfigText image_kernel_config(const core::Config& cfg, const std::string& name);

// Returns the complete images under {cache_dir}/images, sorted by name.
std::vector<ImageInfo> list_images(const core::Config& cfg);

// Returns the image NAME; throws kcr::Error("guest image 'X' not found in DIR", hint "run
// 'kcr image build' ...") when it is missing or incomplete.
ImageInfo find_image(const core::Config& cfg, const std::string& name);

// Deletes the image NAME; throws kcr::Error when there is no such image.
void remove_image(const core::Config& cfg, const std::string& name);

}  // namespace kcr::images
