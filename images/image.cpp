#include "images/image.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/criu_options.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/sha256.hpp"
#include "core/subprocess.hpp"
#include "core/time.hpp"
#include "images/deb.hpp"
#include "images/init_scripts.hpp"
#include "images/initramfs.hpp"
#include "images/kernel_build.hpp"
#include "images/kernel_config.hpp"
#include "images/libraries.hpp"
#include "images/manifest.hpp"
#include "images/modules.hpp"
#include "kcr/version.hpp"

namespace fs = std::filesystem;

namespace kcr::images {

namespace {

using core::first_line;

constexpr const char* k_kernel_metapackage = "linux-image-cloud-amd64";
constexpr const char* k_deb_kernel_file = "vmlinuz";
constexpr const char* k_source_kernel_file = "vmlinux";
constexpr const char* k_config_file = "config";
constexpr const char* k_initrd_file = "initramfs.cpio";
constexpr const char* k_manifest_file = "manifest.yaml";

// What the guest loads (guest.md); names missing from the package or built in are skipped.
// clang-format off
const std::vector<std::string> k_guest_modules = {
    "virtio_mmio",     "virtio_console", "virtio_net", "virtio_blk", "vmw_vsock_virtio_transport",
    "unix_diag",       "inet_diag",      "tcp_diag",   "udp_diag",
    "af_packet_diag",  "netlink_diag",   "nf_tables",  "nft_ct",
    "nft_reject_inet", "overlay",        "tun",        "veth"};
// clang-format on

std::string images_root(const core::Config& cfg) {
  return cfg.cache_dir + "/images";
}
std::string image_dir(const core::Config& cfg, const std::string& name) {
  return images_root(cfg) + "/" + name;
}

void check_image_name(const std::string& name) {
  bool ok =
      !name.empty() && name.size() <= 64 && name[0] != '.' &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      });
  if (!ok) {
    throw Error("guest image name '" + name + "' is not valid",
                "use letters, digits, '-', '_' and '.'", ExitCode::usage);
  }
}

void make_dirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create " + dir + ": " + ec.message());
}

// "linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb" -> package and version.
std::string package_label_from_deb(const std::string& deb_path) {
  std::string base = fs::path(deb_path).filename().string();
  if (base.ends_with(".deb")) base.resize(base.size() - 4);
  auto first = base.find('_');
  if (first == std::string::npos) return base;
  auto second = base.find('_', first + 1);
  return base.substr(0, first) + " " + base.substr(first + 1, second - first - 1);
}

// The newest cached download of PACKAGE in DIR, if any (so rebuilds work offline).
std::optional<std::string> cached_deb(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with("_amd64.deb")) found.push_back(e.path());
  }
  if (found.empty()) return std::nullopt;
  std::sort(found.begin(), found.end());
  return found.back();
}

std::string resolve_kernel_package() {
  auto r = core::run_subprocess({"apt-cache", "depends", k_kernel_metapackage});
  if (!r.ok()) {
    throw Error(fmt::format("cannot resolve {}: apt-cache depends failed: {}", k_kernel_metapackage,
                            first_line(r.err)),
                "run 'apt-get update', or pass a kernel package with --kernel-deb");
  }
  std::size_t pos = 0;
  while ((pos = r.out.find("Depends: ", pos)) != std::string::npos) {
    pos += 9;
    std::string dep = r.out.substr(pos, r.out.find('\n', pos) - pos);
    if (dep.starts_with("linux-image-") && dep.ends_with("-cloud-amd64") &&
        dep != k_kernel_metapackage) {
      return dep;
    }
  }
  throw Error(fmt::format("cannot find the kernel package behind {} in apt's metadata",
                          k_kernel_metapackage),
              "run 'apt-get update', or pass a kernel package with --kernel-deb");
}

std::string fetch_kernel_deb(const core::Config& cfg,
                             const std::function<void(const std::string&)>& progress) {
  std::string downloads = cfg.cache_dir + "/downloads";
  make_dirs(downloads);
  std::string package;
  try {
    package = resolve_kernel_package();
  } catch (const Error&) {
    // Offline and apt knows nothing: a package downloaded earlier still does.
    if (auto cached = cached_deb(downloads, "linux-image-")) {
      progress("apt cannot resolve " + std::string(k_kernel_metapackage) + "; using " + *cached);
      return *cached;
    }
    throw;
  }
  if (auto cached = cached_deb(downloads, package + "_")) {
    progress("using cached " + fs::path(*cached).filename().string());
    return *cached;
  }
  progress("fetching " + package);
  core::SubprocessOptions options;
  options.cwd = downloads;
  options.timeout = std::chrono::minutes(10);
  auto r = core::run_subprocess({"apt-get", "download", package}, options);
  auto deb = cached_deb(downloads, package + "_");
  if (!r.ok() || !deb) {
    std::string why = r.timed_out ? "timed out" : first_line(r.err);
    throw Error("cannot download " + package + ": apt-get download failed: " + why,
                "run 'apt-get update' and check the network, or pass a kernel package with "
                "--kernel-deb");
  }
  return *deb;
}

// KERNEL_DEB when given, else the cloud kernel package fetched with apt (cached).
std::string kernel_deb_path(const core::Config& cfg, const std::string& kernel_deb,
                            const std::function<void(const std::string&)>& progress) {
  if (kernel_deb.empty()) return fetch_kernel_deb(cfg, progress);
  if (!fs::is_regular_file(kernel_deb)) {
    throw Error("kernel package " + kernel_deb + " does not exist", {}, ExitCode::usage);
  }
  return kernel_deb;
}

std::string host_criu_version(const std::string& criu) {
  auto r = core::run_subprocess(core::criu_version_argv(criu));
  if (!r.ok()) throw Error("'" + criu + " --version' failed: " + first_line(r.err));
  std::string version = core::parse_criu_version(r.out);
  if (version.empty()) {
    throw Error("'" + criu + " --version' printed no CRIU version: " + first_line(r.out),
                "is it CRIU? it should print 'Version: X.Y'");
  }
  return version;
}

std::string require_host_program(const std::string& name, const std::string& package) {
  auto path = core::find_program(name);
  if (!path) {
    throw Error(name + " was not found on this host; the guest image needs it",
                "install it: apt-get install " + package);
  }
  return *path;
}

// The host files the guest runs, as guest path -> host path.
struct Userland {
  std::map<std::string, std::string> programs;  // busybox, criu, tar, ip, nft
  std::vector<std::string> libraries;           // interpreter + shared libraries
  std::string agent_path;
  std::string scenario_path;  // kcr-scenario, the built-in workloads and probes
  std::string init_path;      // kcr-init, the static init of a workload with a rootfs
  std::string criu_path;
};

bool is_executable_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

// OPTS.scenario_path, or kcr-scenario next to the agent: in the same directory (an
// installation) or in ../scenario (the build tree: images/agent/kcr-agent and
// images/scenario/kcr-scenario).
std::string find_scenario(const BuildOptions& opts, const std::string& agent_path) {
  if (!opts.scenario_path.empty()) {
    if (!is_executable_file(opts.scenario_path)) {
      throw Error("kcr-scenario binary " + opts.scenario_path + " is not an executable file");
    }
    return fs::absolute(opts.scenario_path).lexically_normal().string();
  }
  fs::path dir = fs::path(agent_path).parent_path();
  std::vector<fs::path> candidates = {dir / "kcr-scenario",
                                      dir / ".." / "scenario" / "kcr-scenario"};
  for (const auto& c : candidates) {
    if (is_executable_file(c)) return c.lexically_normal().string();
  }
  throw Error("the kcr-scenario binary was not found next to the agent (looked for " +
                  candidates[0].lexically_normal().string() + " and " +
                  candidates[1].lexically_normal().string() + ")",
              "build it with the agent (ninja builds both) or put it next to kcr-agent");
}

// kcr-init, built beside the agent (images/agent/kcr-init).
std::string find_init(const std::string& agent_path) {
  fs::path path = fs::path(agent_path).parent_path() / "kcr-init";
  if (!is_executable_file(path)) {
    throw Error("the kcr-init binary was not found next to the agent (" + path.string() + ")",
                "build it with the agent (the build makes both) or put it next to kcr-agent");
  }
  return path.lexically_normal().string();
}

Userland collect_userland(const BuildOptions& opts) {
  Userland u;
  if (opts.agent_path.empty()) {
    throw Error("no agent binary given for the guest image", "pass the path of kcr-agent",
                ExitCode::usage);
  }
  if (::access(opts.agent_path.c_str(), X_OK) != 0 || fs::is_directory(opts.agent_path)) {
    throw Error("agent binary " + opts.agent_path + " is not an executable file");
  }
  u.agent_path = fs::absolute(opts.agent_path).string();
  u.scenario_path = find_scenario(opts, u.agent_path);
  u.init_path = find_init(u.agent_path);
  if (::access("/bin/busybox", X_OK) != 0) {
    throw Error("/bin/busybox was not found on this host; the guest image needs it",
                "install it: apt-get install busybox-static");
  }
  if (opts.criu_path.empty()) {
    u.criu_path = require_host_program("criu", "criu");
  } else {
    if (!is_executable_file(opts.criu_path)) {
      throw Error("the CRIU binary " + opts.criu_path + " is not an executable file",
                  "give the criu you built: kcr image build --criu PATH/criu/criu",
                  ExitCode::usage);
    }
    u.criu_path = fs::absolute(opts.criu_path).lexically_normal().string();
    // What it says it is, before anything is built around it.
    host_criu_version(u.criu_path);
  }
  u.programs = {{"/bin/busybox", "/bin/busybox"},
                {"criu", u.criu_path},
                {"tar", "/bin/tar"},
                // CRIU saves a network namespace's addresses and routes with "ip addr save"
                // and "ip route save", which busybox's ip does not have.
                {"ip", require_host_program("ip", "iproute2")},
                {"nft", require_host_program("nft", "nftables")}};
  // kcr-scenario is normally static (no libraries); a sanitizer build's is not.
  std::vector<std::string> roots = {u.agent_path, u.scenario_path};
  for (const auto& [name, path] : u.programs) roots.push_back(path);
  u.libraries = library_closure(roots, read_host_elf_deps, resolve_host_library);
  return u;
}

// KERNEL_LABEL names what KERNEL_FILE is ("kernel-deb": the package, "kernel-source": the
// built vmlinux); its content is hashed.
std::string compute_content_hash(std::string_view kernel_label, const std::string& kernel_file,
                                 const Userland& u) {
  core::Sha256 h;
  auto field = [&](std::string_view label, std::string_view value) {
    h.update(label);
    h.update(std::to_string(value.size()) + ":");
    h.update(value);
  };
  field("format", std::to_string(k_image_format_version));
  field(kernel_label, core::sha256_file_hex(kernel_file));
  std::set<std::string> files = {u.agent_path, u.scenario_path, u.init_path};
  for (const auto& [name, path] : u.programs) files.insert(path);
  files.insert(u.libraries.begin(), u.libraries.end());
  for (const auto& path : files) {
    field("path", path);
    field("file", core::sha256_file_hex(path));
  }
  field("init", k_init_script);
  field("stage2", k_stage2_script);
  for (const auto& m : k_guest_modules) field("module", m);
  return h.hex_digest();
}

std::optional<ImageManifest> load_manifest(const std::string& dir) {
  std::string path = dir + "/" + k_manifest_file;
  if (::access(path.c_str(), F_OK) != 0) return std::nullopt;
  return manifest_from_yaml(core::read_file(path), dir, path);
}

bool artifacts_exist(const ImageInfo& info) {
  std::error_code ec;
  return fs::is_regular_file(info.kernel, ec) && fs::is_regular_file(info.initrd, ec) &&
         fs::file_size(info.kernel, ec) == info.kernel_bytes &&
         fs::file_size(info.initrd, ec) == info.initrd_bytes;
}

// The kernel an image boots, taken out of Debian's package or kcr's source build.
struct KernelParts {
  KernelFlavor flavor = KernelFlavor::debian;
  std::string release;
  std::string label;      // for the manifest's kernel_package
  std::string file_name;  // in the image directory
  std::string kernel;     // the bytes -kernel boots
  std::string config;
  std::set<std::string> builtin;           // normalised module names
  std::map<std::string, DebFile> modules;  // normalised name -> .ko
  std::map<std::string, std::vector<std::string>> depends;
};

// The modules a modules.builtin file lists (one path per line).
void add_builtin(const std::string& text, KernelParts& k) {
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    k.builtin.insert(module_name_from_path(text.substr(start, end - start)));
    start = end + 1;
  }
}

// A .ko the image may load, with what it depends on (WHAT names it in errors).
void add_module(DebFile f, const std::string& what, KernelParts& k) {
  ModInfo info = parse_modinfo(f.data, what);
  std::string name = info.name.empty() ? module_name_from_path(f.path) : info.name;
  k.depends[name] = std::move(info.depends);
  k.modules[name] = std::move(f);
}

KernelParts read_kernel_deb(const std::string& deb_path) {
  KernelParts k;
  std::vector<DebFile> kernels;
  auto want = [](std::string_view p) {
    return p.starts_with("boot/vmlinuz-") || p.starts_with("boot/config-") ||
           (p.starts_with("lib/modules/") &&
            (p.ends_with(".ko") || p.ends_with("/modules.builtin")));
  };
  read_deb_data(deb_path, want, [&](DebFile&& f) {
    if (f.path.starts_with("boot/vmlinuz-")) {
      kernels.push_back(std::move(f));
    } else if (f.path.starts_with("boot/config-")) {
      k.config = std::move(f.data);
    } else if (f.path.ends_with("/modules.builtin")) {
      add_builtin(f.data, k);
    } else {
      std::string what = deb_path + ": " + f.path;
      add_module(std::move(f), what, k);
    }
  });
  if (kernels.size() != 1) {
    throw Error(fmt::format("{}: expected one boot/vmlinuz-* in the package, found {}", deb_path,
                            kernels.size()),
                "pass a linux-image-* kernel package");
  }
  k.release = kernels[0].path.substr(std::string("boot/vmlinuz-").size());
  k.label = package_label_from_deb(deb_path);
  k.file_name = k_deb_kernel_file;
  k.kernel = std::move(kernels[0].data);
  return k;
}

// The source kernel has everything built in: no modules. Its vmlinux boots through the PVH
// entry, skipping the decompression that costs seconds under TCG (guest.md).
KernelParts read_source_kernel(const SourceKernel& source) {
  KernelParts k;
  k.flavor = KernelFlavor::source;
  k.release = source.release;
  k.label = "kcr source build " + source.key;
  k.file_name = k_source_kernel_file;
  k.kernel = core::read_file(source.vmlinux);
  k.config = core::read_file(source.config);
  return k;
}

// The release a kernel image says it is: a bzImage's setup header names it
// (kernel_version, at 0x200 + the u16 at 0x20E); a vmlinux holds "Linux version R ...".
std::string kernel_image_release(const std::string& bytes, const std::string& file) {
  std::string text;
  if (bytes.size() > 0x210 && bytes.compare(0x202, 4, "HdrS") == 0) {
    auto lo = static_cast<unsigned char>(bytes[0x20E]);
    auto hi = static_cast<unsigned char>(bytes[0x20F]);
    std::size_t at = 0x200 + (static_cast<std::size_t>(hi) << 8 | lo);
    if (at < bytes.size()) text = bytes.substr(at, 256);
  } else {
    auto at = bytes.find("Linux version ");
    if (at != std::string::npos) text = bytes.substr(at + 14, 256);
  }
  std::string release = text.substr(0, text.find_first_of(" \n\0", 0, 3));
  bool plain = !release.empty() && release.size() < 128 &&
               release.find_first_not_of(
                   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                   "0123456789._+-") == std::string::npos;
  if (!plain) {
    throw Error("cannot find the kernel's release in " + file,
                "give a bzImage (arch/x86/boot/bzImage) or a vmlinux", ExitCode::usage);
  }
  return release;
}

// The kernel of OPTS.kernel_image/kernel_config (and modules), as the user built it.
KernelParts read_custom_kernel(const BuildOptions& opts) {
  if (opts.kernel_image.empty() || opts.kernel_config.empty()) {
    throw Error("a kernel of your own needs both --kernel-image and --kernel-config",
                "kcr image build --kernel-image arch/x86/boot/bzImage --kernel-config .config",
                ExitCode::usage);
  }
  KernelParts k;
  k.flavor = KernelFlavor::custom;
  for (const auto* f : {&opts.kernel_image, &opts.kernel_config}) {
    std::error_code ec;
    if (!fs::is_regular_file(*f, ec)) {
      throw Error(*f + " is not a file", "check the path", ExitCode::usage);
    }
  }
  k.kernel = core::read_file(opts.kernel_image, std::size_t{256} << 20);
  k.config = core::read_file(opts.kernel_config, std::size_t{16} << 20);
  k.release = kernel_image_release(k.kernel, opts.kernel_image);
  k.label = "your kernel " + fs::absolute(opts.kernel_image).lexically_normal().string();
  k.file_name = k.kernel.compare(0, 4,
                                 "\x7f"
                                 "ELF") == 0
                    ? k_source_kernel_file
                    : k_deb_kernel_file;
  if (opts.kernel_modules.empty()) return k;
  fs::path root = opts.kernel_modules;
  if (fs::is_directory(root / "lib" / "modules" / k.release))
    root = root / "lib" / "modules" / k.release;
  if (!fs::is_regular_file(root / "modules.builtin") &&
      !fs::is_regular_file(root / "modules.order")) {
    throw Error("no modules of kernel " + k.release + " in " + opts.kernel_modules,
                "give the INSTALL_MOD_PATH of 'make modules_install' (it holds lib/modules/" +
                    k.release + ")",
                ExitCode::usage);
  }
  if (auto builtin = core::try_read_file((root / "modules.builtin").string())) {
    add_builtin(*builtin, k);
  }
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file() || e.is_symlink() || e.path().extension() != ".ko") continue;
    DebFile f;
    f.path = "lib/modules/" + k.release + "/" + fs::relative(e.path(), root).string();
    f.data = core::read_file(e.path().string(), std::size_t{64} << 20);
    add_module(std::move(f), e.path().string(), k);
  }
  return k;
}

// Refuses a kernel that lacks an option kcr requires; modules count when the image has them
// to load (a kernel of the user's own without its modules must have everything built in).
void check_kernel(const KernelParts& kernel,
                  const std::function<void(const std::string&)>& progress) {
  auto check = check_kernel_config(parse_kernel_config(kernel.config, kernel.label + ": config"),
                                   kcr_kernel_fragment());
  if (!check.ok()) {
    throw Error("kernel " + kernel.release + " lacks options kcr needs: " + describe_missing(check),
                "'kcr image check-kernel' lists what each option is for; 'kcr image build "
                "--kernel source' builds a kernel that has them");
  }
  std::size_t required = 0, modules = 0;
  std::string as_modules;
  for (const auto& c : check.options) {
    if (c.option.need != Need::required) continue;
    ++required;
    if (c.status == OptionStatus::module) {
      ++modules;
      as_modules += (as_modules.empty() ? "" : ", ") + c.option.name;
    }
  }
  if (kernel.flavor == KernelFlavor::custom && kernel.modules.empty() && modules > 0) {
    throw Error("kernel " + kernel.release +
                    " has options kcr needs as modules, and no modules "
                    "were given: " +
                    as_modules,
                "build them in (=y), or pass --kernel-modules INSTALL_MOD_PATH", ExitCode::usage);
  }
  progress(fmt::format("kernel config: all {} required options present ({} as modules)", required,
                       modules));
}

KernelFlavor choose_kernel(const core::Config& cfg, const BuildOptions& opts) {
  if (!opts.kernel_image.empty() || !opts.kernel_config.empty() || !opts.kernel_modules.empty()) {
    if (!opts.kernel_deb.empty() || opts.kernel) {
      throw Error("--kernel-image excludes --kernel and --kernel-deb", {}, ExitCode::usage);
    }
    return KernelFlavor::custom;
  }
  if (!opts.kernel_deb.empty()) {
    if (opts.kernel == KernelFlavor::source) {
      throw Error("--kernel-deb and --kernel source exclude each other", {}, ExitCode::usage);
    }
    return KernelFlavor::debian;
  }
  if (opts.kernel) return *opts.kernel;
  return find_source_kernel(cfg) ? KernelFlavor::source : KernelFlavor::debian;
}

std::string megabytes(uint64_t bytes) {
  return fmt::format("{} MB", (bytes + 500'000) / 1'000'000);
}

}  // namespace

BuildResult build_image(const core::Config& cfg, const BuildOptions& opts,
                        const std::function<void(const std::string&)>& progress) {
  check_image_name(opts.name);
  const std::string dir = image_dir(cfg, opts.name);
  try {
    Userland userland = collect_userland(opts);
    const KernelFlavor flavor = choose_kernel(cfg, opts);
    std::string deb_path;
    std::optional<SourceKernel> source;
    std::string hash;
    std::optional<KernelParts> custom;
    if (flavor == KernelFlavor::custom) {
      custom = read_custom_kernel(opts);
      // The image, its config and every module it may load make the kernel.
      core::Sha256 parts;
      parts.update(custom->config);
      for (const auto& [name, ko] : custom->modules) parts.update(name + ":" + ko.data);
      hash =
          compute_content_hash("kernel-custom " + parts.hex_digest(), opts.kernel_image, userland);
    } else if (flavor == KernelFlavor::source) {
      source = build_source_kernel(cfg, progress);
      hash = compute_content_hash("kernel-source", source->vmlinux, userland);
    } else {
      deb_path = kernel_deb_path(cfg, opts.kernel_deb, progress);
      hash = compute_content_hash("kernel-deb", deb_path, userland);
    }
    if (!opts.force) {
      try {
        auto existing = load_manifest(dir);
        if (existing && existing->image.content_hash == hash && artifacts_exist(existing->image)) {
          progress("guest image '" + opts.name + "' is up to date");
          return {existing->image, false};
        }
      } catch (const Error&) {
        // An unreadable manifest is simply rebuilt.
      }
    }

    KernelParts kernel;
    if (custom) {
      kernel = std::move(*custom);
    } else if (source) {
      kernel = read_source_kernel(*source);
    } else {
      progress("reading " + fs::path(deb_path).filename().string());
      kernel = read_kernel_deb(deb_path);
    }
    check_kernel(kernel, progress);
    std::vector<std::string> requested;
    for (const auto& m : k_guest_modules) {
      std::string name = normalize_module_name(m);
      if (kernel.modules.count(name) && !kernel.builtin.count(name)) requested.push_back(name);
    }
    std::vector<std::string> order = order_modules(requested, kernel.depends);
    progress(fmt::format("kernel {} ({}): {} modules", kernel.release, to_string(kernel.flavor),
                         order.size()));

    InitramfsTree tree;
    // The host's merged-/usr symlinks (/bin -> usr/bin) come first: everything added later
    // resolves through them, so the guest's paths mean what they mean on the host.
    for (const char* top : {"/bin", "/sbin", "/lib", "/lib64"}) {
      std::error_code ec;
      if (fs::is_symlink(top, ec)) tree.add_symlink(top, fs::read_symlink(top, ec).string());
    }
    for (const auto& [name, path] : userland.programs) {
      // A CRIU of the user's own lives anywhere on the host; in the guest it is the criu.
      if (name == "criu" && path != "/usr/sbin/criu") {
        tree.add_file("/usr/sbin/criu", core::read_file(path), 0755);
      } else {
        tree.add_host_path(path);
      }
    }
    for (const auto& lib : userland.libraries) tree.add_host_path(lib);
    tree.add_file("/usr/bin/kcr-agent", core::read_file(userland.agent_path), 0755);
    tree.add_file("/usr/bin/kcr-scenario", core::read_file(userland.scenario_path), 0755);
    tree.add_dir("/usr/lib/kcr", 0755);
    tree.add_file("/usr/lib/kcr/kcr-init", core::read_file(userland.init_path), 0755);
    for (const char* d : {"/proc", "/sys", "/dev", "/tmp", "/run", "/root", "/etc", "/newroot",
                          "/var", "/mnt", "/usr/bin", "/usr/sbin"}) {
      tree.add_dir(d, 0755);
    }
    tree.add_dir("/tmp", 01777);
    tree.add_dir("/root", 0700);
    tree.add_char_device("/dev/console", 5, 1, 0600);
    tree.add_char_device("/dev/null", 1, 3, 0666);
    tree.add_file("/init", k_init_script, 0755);
    tree.add_file("/sbin/kcr-stage2", k_stage2_script, 0755);
    tree.add_file("/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0644);
    tree.add_file("/etc/group", "root:x:0:\ntty:x:5:\n", 0644);
    tree.add_file("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n", 0644);
    tree.add_file("/etc/hostname", "kcr\n", 0644);
    std::string order_list;
    std::string module_root = "/lib/modules/" + kernel.release + "/";
    for (const auto& name : order) {
      DebFile& ko = kernel.modules.at(name);
      std::string guest_path = "/" + ko.path;
      tree.add_file(guest_path, std::move(ko.data), 0644);
      order_list += guest_path + "\n";
    }
    tree.add_file("/lib/modules/kcr.order", order_list, 0644);

    make_dirs(dir);
    // Without a manifest the image is incomplete: drop it before touching the artifacts.
    std::string manifest_path = dir + "/" + k_manifest_file;
    if (::unlink(manifest_path.c_str()) != 0 && errno != ENOENT) {
      throw_errno("cannot remove " + manifest_path);
    }
    ImageManifest manifest;
    ImageInfo& info = manifest.image;
    info.name = opts.name;
    info.dir = dir;
    info.kernel = dir + "/" + kernel.file_name;
    info.initrd = dir + "/" + k_initrd_file;
    info.kernel_release = kernel.release;
    info.kernel_package = kernel.label;
    info.kernel_flavor = kernel.flavor;
    info.criu_version = host_criu_version(userland.criu_path);
    info.agent_version = std::string(k_version) + "+sha256." +
                         core::sha256_file_hex(userland.agent_path).substr(0, 12);
    info.content_hash = hash;
    info.created = core::now_iso8601();
    info.kernel_bytes = kernel.kernel.size();

    // A rebuild with the other flavor leaves no stale kernel beside the new one.
    for (const char* name : {k_deb_kernel_file, k_source_kernel_file}) {
      std::error_code ec;
      if (name != kernel.file_name) fs::remove(dir + "/" + name, ec);
    }
    core::write_file_atomic(info.kernel, kernel.kernel, 0644);
    core::write_file_atomic(dir + "/" + k_config_file, kernel.config, 0644);
    progress("writing initramfs (" + megabytes(tree.file_bytes()) + ")");
    write_cpio(tree, info.initrd);
    info.initrd_bytes = fs::file_size(info.initrd);

    manifest.modules = order;
    for (const auto& [path, e] : tree.entries()) {
      if (e.type == InitramfsTree::Type::file) manifest.files.push_back({path, e.data.size()});
    }
    core::write_file_atomic(manifest_path, manifest_to_yaml(manifest), 0644);
    progress("guest image '" + opts.name + "' written to " + dir);
    return {info, true};
  } catch (const Error& e) {
    throw e.with_context("building guest image '" + opts.name + "'");
  }
}

const char* to_string(KernelFlavor flavor) {
  switch (flavor) {
    case KernelFlavor::source:
      return "source";
    case KernelFlavor::custom:
      return "custom";
    default:
      return "debian";
  }
}

KernelConfigText debian_kernel_config(const core::Config& cfg, const std::string& kernel_deb,
                                      const std::function<void(const std::string&)>& progress) {
  std::string deb_path = kernel_deb_path(cfg, kernel_deb, progress);
  std::optional<std::string> config;
  read_deb_data(
      deb_path, [](std::string_view p) { return p.starts_with("boot/config-"); },
      [&](DebFile&& f) { config = std::move(f.data); });
  if (!config) {
    throw Error(deb_path + " holds no boot/config-*", "pass a linux-image-* kernel package");
  }
  return {package_label_from_deb(deb_path), std::move(*config)};
}

KernelConfigText image_kernel_config(const core::Config& cfg, const std::string& name) {
  ImageInfo info = find_image(cfg, name);
  std::string path = info.dir + "/" + k_config_file;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error("guest image '" + name + "' has no kernel config (" + path + ")",
                "rebuild it with 'kcr image build --force'");
  }
  return {fmt::format("guest image '{}' (kernel {}, {})", name, info.kernel_release,
                      to_string(info.kernel_flavor)),
          core::read_file(path)};
}

std::vector<ImageInfo> list_images(const core::Config& cfg) {
  std::vector<ImageInfo> images;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(images_root(cfg), ec)) {
    if (!e.is_directory()) continue;
    try {
      auto m = load_manifest(e.path().string());
      if (m && artifacts_exist(m->image)) images.push_back(m->image);
    } catch (const Error&) {
      // Incomplete or foreign directories are not images.
    }
  }
  std::sort(images.begin(), images.end(),
            [](const ImageInfo& a, const ImageInfo& b) { return a.name < b.name; });
  return images;
}

ImageInfo find_image(const core::Config& cfg, const std::string& name) {
  const std::string root = images_root(cfg);
  auto not_found = [&](const std::string& why) {
    return Error(
        "guest image '" + name + "' not found in " + root + why,
        "run 'kcr image build" + (name == "default" ? "" : " --name " + name) + "' to build it");
  };
  check_image_name(name);
  std::optional<ImageManifest> m;
  try {
    m = load_manifest(image_dir(cfg, name));
  } catch (const Error& e) {
    throw not_found(std::string(" (") + e.what() + ")");
  }
  if (!m) throw not_found("");
  if (!artifacts_exist(m->image)) throw not_found(" (its kernel or initramfs is missing)");
  return m->image;
}

void remove_image(const core::Config& cfg, const std::string& name) {
  check_image_name(name);
  std::string dir = image_dir(cfg, name);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw Error("guest image '" + name + "' not found in " + images_root(cfg),
                "'kcr image ls' shows the images there");
  }
  fs::remove_all(dir, ec);
  if (ec) throw Error("cannot remove " + dir + ": " + ec.message());
}

}  // namespace kcr::images
