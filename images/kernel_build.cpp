#include "images/kernel_build.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/files.hpp"
#include "core/sha256.hpp"
#include "core/subprocess.hpp"
#include "core/unique_fd.hpp"
#include "images/kernel_config.hpp"

namespace fs = std::filesystem;

namespace kcr::images {

namespace {

using core::first_line;

constexpr const char* k_tools_hint =
    "install the kernel build tools: apt-get install linux-source-6.1 make gcc bc bison flex "
    "libelf-dev lz4 (scripts/build-source-kernel.sh does it)";

std::string kernels_root(const core::Config& cfg) {
  return cfg.cache_dir + "/kernels";
}

SourceKernel kernel_in(const std::string& dir, const std::string& key) {
  SourceKernel k;
  k.dir = dir;
  k.key = key;
  k.vmlinux = dir + "/vmlinux";
  k.bz_image = dir + "/bzImage";
  k.config = dir + "/config";
  k.build_log = dir + "/build.log";
  return k;
}

std::optional<SourceKernel> cached_kernel(const core::Config& cfg, const std::string& key) {
  SourceKernel k = kernel_in(kernels_root(cfg) + "/" + key, key);
  std::error_code ec;
  for (const auto& file : {k.vmlinux, k.bz_image, k.config, k.dir + "/release"}) {
    if (!fs::is_regular_file(file, ec)) return std::nullopt;
  }
  std::string release = core::read_file(k.dir + "/release");
  k.release = release.substr(0, release.find('\n'));
  return k;
}

void require_build_tools() {
  std::vector<std::string> missing;
  for (const char* tool : {"make", "gcc", "bc", "bison", "flex", "lz4", "tar", "xz", "perl"}) {
    if (!core::find_program(tool)) missing.push_back(tool);
  }
  // objtool (the ORC unwinder) links libelf.
  if (::access("/usr/include/gelf.h", R_OK) != 0) missing.push_back("libelf-dev");
  if (!missing.empty()) {
    throw Error(
        fmt::format("building the kernel needs {}, missing on this host", fmt::join(missing, ", ")),
        k_tools_hint);
  }
}

// Runs ARGV in the kernel tree with its output appended to LOG; throws naming STEP.
void run_logged(const std::vector<std::string>& argv, const std::string& cwd,
                const std::string& log, const std::string& step,
                const std::function<void()>& on_tick = {}) {
  core::SubprocessOptions o;
  o.cwd = cwd;
  o.output_file = log;
  o.on_tick = on_tick;
  o.tick_interval = std::chrono::seconds(10);
  auto r = core::run_subprocess(argv, o);
  if (r.ok()) return;
  // make's own summary lines say which file failed; the full log stays.
  std::string errors;
  std::ifstream in(log);
  std::string line;
  int shown = 0;
  while (std::getline(in, line) && shown < 8) {
    if (line.find("error") != std::string::npos || line.find("Error") != std::string::npos) {
      errors += "\n  " + line;
      ++shown;
    }
  }
  throw Error(fmt::format("{} failed (exit status {}); log: {}{}", step, r.exit_code, log, errors),
              k_tools_hint);
}

// Counts kbuild's "  CC      path.o" lines written to LOG since OFFSET.
class CompileCounter {
 public:
  explicit CompileCounter(std::string log) : m_log(std::move(log)) {}

  std::size_t update() {
    std::ifstream in(m_log);
    in.seekg(static_cast<std::streamoff>(m_offset));
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // a partial last line is counted next time
      m_offset += line.size() + 1;
      if (line.starts_with("  CC ")) ++m_count;
    }
    return m_count;
  }

 private:
  std::string m_log;
  std::size_t m_offset = 0;
  std::size_t m_count = 0;
};

// How many files an earlier build compiled, from the newest log kept next to a
// cached kernel under ROOT: this build's total is about the same, as builds
// differ by a few config options. Nullopt when no kernel was built before.
std::optional<std::size_t> estimate_compiled_files(const std::string& root) {
  std::error_code ec;
  std::optional<fs::file_time_type> newest;
  std::string log;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    std::string candidate = entry.path().string() + "/build.log";
    auto when = fs::last_write_time(candidate, ec);
    if (ec || (newest && when <= *newest)) continue;
    newest = when;
    log = candidate;
  }
  if (log.empty()) return std::nullopt;
  std::size_t n = CompileCounter(log).update();
  if (n == 0) return std::nullopt;
  return n;
}

// "1234 of about 2700 files compiled (45%)", or "1234 files compiled" without an estimate.
std::string compiled_text(std::size_t done, std::optional<std::size_t> total) {
  if (!total) return fmt::format("{} files compiled", done);
  return fmt::format("{} of about {} files compiled ({}%)", done, *total,
                     std::min<std::size_t>(99, done * 100 / *total));
}

UniqueFd lock_key(const std::string& path,
                  const std::function<void(const std::string&)>& progress) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw_errno("cannot open " + path);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    progress("another kcr is building this kernel; waiting for it");
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) throw_errno("cannot lock " + path);
    }
  }
  return fd;
}

std::string minutes(std::chrono::steady_clock::duration d) {
  auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return fmt::format("{} min {:02} s", s / 60, s % 60);
}

}  // namespace

std::string source_kernel_key(const std::string& version, std::string_view fragment) {
  std::string safe = version;
  for (char& c : safe) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '+') c = '_';
  }
  core::Sha256 h;
  h.update(fragment);
  return safe + "-" + h.hex_digest().substr(0, 12);
}

std::optional<KernelSource> find_kernel_source() {
  if (!core::find_program("dpkg-query")) return std::nullopt;
  auto r = core::run_subprocess(
      {"dpkg-query", "-W", "-f=${Package} ${Version} ${db:Status-Abbrev}\n", "linux-source-*"});
  std::optional<KernelSource> found;
  std::size_t start = 0;
  while (start < r.out.size()) {
    auto end = r.out.find('\n', start);
    if (end == std::string::npos) end = r.out.size();
    std::string line = r.out.substr(start, end - start);
    start = end + 1;
    auto sp1 = line.find(' ');
    auto sp2 = line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos) continue;
    if (!line.substr(sp2 + 1).starts_with("ii")) continue;
    KernelSource s{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1), {}};
    s.tarball = "/usr/src/" + s.package + ".tar.xz";
    std::error_code ec;
    if (!fs::is_regular_file(s.tarball, ec)) continue;
    // Several installed: the newest series wins (names sort by version within Debian 12).
    if (!found || found->package < s.package) found = s;
  }
  return found;
}

std::optional<SourceKernel> find_source_kernel(const core::Config& cfg) {
  auto source = find_kernel_source();
  if (!source) return std::nullopt;
  return cached_kernel(cfg, source_kernel_key(source->version, kcr_kernel_fragment_text()));
}

SourceKernel build_source_kernel(const core::Config& cfg,
                                 const std::function<void(const std::string&)>& progress) {
  auto source = find_kernel_source();
  if (!source) {
    throw Error("Debian's kernel source (linux-source-*) is not installed", k_tools_hint);
  }
  const std::string key = source_kernel_key(source->version, kcr_kernel_fragment_text());
  if (auto cached = cached_kernel(cfg, key)) {
    progress("kernel " + cached->release + " from " + source->package + " is up to date");
    return *cached;
  }
  require_build_tools();
  const std::string root = kernels_root(cfg);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) throw Error("cannot create " + root + ": " + ec.message());
  UniqueFd lock = lock_key(root + "/." + key + ".lock", progress);
  if (auto cached = cached_kernel(cfg, key)) return *cached;

  // Built in a temporary tree and renamed into place: an interrupted build leaves no kernel,
  // and its tree is removed by the next build.
  const std::string work = root + "/.build-" + key;
  const std::string tree = work + "/linux";
  const std::string log = root + "/" + key + ".build.log";
  fs::remove_all(work, ec);
  fs::create_directories(tree, ec);
  if (ec) throw Error("cannot create " + tree + ": " + ec.message());
  fs::remove(log, ec);
  // The tree is ~1 GB: gone however the build ends (the log stays). A killed kcr leaves it
  // to the next build.
  struct RemoveTree {
    std::string path;
    ~RemoveTree() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } remove_tree{work};
  auto started = std::chrono::steady_clock::now();

  progress(fmt::format("unpacking {} {}", source->package, source->version));
  run_logged({"tar", "-xf", source->tarball, "-C", tree, "--strip-components=1"}, work, log,
             "unpacking " + source->tarball);

  const std::vector<std::string> make = {"make", "ARCH=x86_64"};
  auto make_with = [&](std::vector<std::string> targets) {
    std::vector<std::string> argv = make;
    argv.insert(argv.end(), targets.begin(), targets.end());
    return argv;
  };
  run_logged(make_with({"allnoconfig"}), tree, log, "make allnoconfig");
  {
    std::ofstream out(tree + "/.config", std::ios::app);
    out << "\n" << kcr_kernel_fragment_text();
    if (!out.flush()) throw Error("cannot append the fragment to " + tree + "/.config");
  }
  run_logged(make_with({"olddefconfig"}), tree, log, "make olddefconfig");
  const std::string config_text = core::read_file(tree + "/.config");
  auto dropped =
      dropped_options(parse_kernel_config(config_text, tree + "/.config"), kcr_kernel_fragment());
  if (!dropped.empty()) {
    std::string names;
    for (const auto& o : dropped) {
      names += fmt::format("{}{}={} (needed by: {})", names.empty() ? "" : ", ", o.name, o.value,
                           o.needed_by);
    }
    throw Error("the kernel config lost options of images/kernel/criu.config: " + names,
                "an option whose dependencies are unmet is dropped by olddefconfig: add its "
                "dependencies to the fragment");
  }

  unsigned jobs = std::max(1U, std::thread::hardware_concurrency());
  const auto expected = estimate_compiled_files(root);
  progress(fmt::format(
      "building the kernel with {} jobs: about 11 minutes on 2 idle cores{}; log: {}", jobs,
      expected ? fmt::format(", about {} files (as the last build)", *expected) : "", log));
  CompileCounter counter(log);
  run_logged(make_with({"-j" + std::to_string(jobs), "vmlinux", "bzImage"}), tree, log,
             "make vmlinux bzImage", [&] {
               progress(fmt::format("building the kernel: {}, {}",
                                    minutes(std::chrono::steady_clock::now() - started),
                                    compiled_text(counter.update(), expected)));
             });

  core::SubprocessOptions in_tree;
  in_tree.cwd = tree;
  auto release = core::run_subprocess(make_with({"-s", "kernelrelease"}), in_tree);
  if (!release.ok()) throw Error("make kernelrelease failed: " + first_line(release.err));

  const std::string stage = work + "/result";
  SourceKernel staged = kernel_in(stage, key);
  fs::create_directories(stage, ec);
  fs::rename(tree + "/vmlinux", staged.vmlinux, ec);
  if (!ec) fs::rename(tree + "/arch/x86/boot/bzImage", staged.bz_image, ec);
  if (!ec) fs::rename(tree + "/.config", staged.config, ec);
  if (ec) throw Error("cannot move the built kernel into " + stage + ": " + ec.message());
  core::write_file_atomic(stage + "/release", first_line(release.out) + "\n", 0644);
  fs::rename(log, staged.build_log, ec);
  const std::string dir = root + "/" + key;
  fs::remove_all(dir, ec);
  fs::rename(stage, dir, ec);
  if (ec) throw Error("cannot move " + stage + " to " + dir + ": " + ec.message());
  auto built = cached_kernel(cfg, key);
  if (!built) throw Error("the kernel built into " + dir + " is incomplete");
  progress(fmt::format("kernel {} built in {}: {}", built->release,
                       minutes(std::chrono::steady_clock::now() - started), dir));
  return *built;
}

}  // namespace kcr::images
