#include <fmt/core.h>
#include <libvirt/libvirt.h>
#include <sys/utsname.h>

#include <optional>

#include "cli/context.hpp"
#include "core/criu_options.hpp"
#include "core/error.hpp"
#include "core/subprocess.hpp"
#include "images/image.hpp"
#include "kcr/version.hpp"
#include "vm/backend.hpp"
#include "vm/vm.hpp"

namespace kcr::cli {

namespace {

// What a bug report needs to know about kcr and everything it runs on.
struct Versions {
  std::string kernel, arch;  // this host's
  std::string qemu;          // "7.2.22 (Debian 1:7.2+dfsg-7+deb12u13)", or "missing"
  std::string libvirt;       // the library kcr is linked against
  std::optional<std::string> host_criu;
  std::string image;  // the default guest image's name
  std::optional<images::ImageInfo> image_info;
  std::string image_error;
};

std::string qemu_version(const core::Config& cfg) {
  try {
    std::string v = vm::backend_named("qemu").version(cfg);
    const std::string prefix = "QEMU emulator version ";
    return v.rfind(prefix, 0) == 0 ? v.substr(prefix.size()) : v;
  } catch (const Error&) {
    return "missing";
  }
}

std::string libvirt_version() {
  unsigned long v = 0;
  if (virGetVersion(&v, nullptr, nullptr) != 0) return "unknown";
  return fmt::format("{}.{}.{}", v / 1000000, v / 1000 % 1000, v % 1000);
}

// The host's own CRIU (not needed by kcr: CRIU runs in the guest).
std::optional<std::string> host_criu_version() {
  auto criu = core::find_program("criu");
  if (!criu) criu = core::find_program("/usr/sbin/criu");
  if (!criu) return std::nullopt;
  core::SubprocessOptions so;
  so.timeout = std::chrono::seconds(10);
  try {
    auto r = core::run_subprocess(core::criu_version_argv(*criu), so);
    std::string v = core::parse_criu_version(r.out);
    if (!v.empty()) return v;
  } catch (const Error&) {
  }
  return "unknown";
}

Versions gather(const core::Config& cfg) {
  Versions v;
  utsname u{};
  if (::uname(&u) == 0) {
    v.kernel = u.release;
    v.arch = u.machine;
  }
  v.qemu = qemu_version(cfg);
  v.libvirt = libvirt_version();
  v.host_criu = host_criu_version();
  v.image = cfg.image;
  try {
    v.image_info = images::find_image(cfg, cfg.image);
  } catch (const Error& e) {
    v.image_error = e.what();
  }
  return v;
}

core::Json or_null(const std::optional<std::string>& s) {
  return s ? core::Json(*s) : core::Json();
}

core::Json versions_json(const Versions& v, const vm::VmSession* session) {
  auto j = core::Json::object();
  auto kcr = core::Json::object();
  kcr.set("version", k_version);
  kcr.set("protocol_version", k_protocol_version);
  j.set("kcr", kcr);
  auto host = core::Json::object();
  host.set("kernel", v.kernel);
  host.set("arch", v.arch);
  host.set("qemu", v.qemu);
  host.set("libvirt", v.libvirt);
  host.set("criu", or_null(v.host_criu));
  j.set("host", host);
  auto image = core::Json::object();
  image.set("name", v.image);
  const auto* info = v.image_info ? &*v.image_info : nullptr;
  image.set("agent_version", info ? core::Json(info->agent_version) : core::Json());
  image.set("criu_version", info ? core::Json(info->criu_version) : core::Json());
  image.set("kernel_release", info ? core::Json(info->kernel_release) : core::Json());
  image.set("kernel_flavor",
            info ? core::Json(images::to_string(info->kernel_flavor)) : core::Json());
  image.set("created", info ? core::Json(info->created) : core::Json());
  if (!info) image.set("error", v.image_error);
  j.set("image", image);
  if (session) {
    const auto& h = session->hello();
    auto g = core::Json::object();
    g.set("name", session->info().name);
    g.set("image", session->info().image);
    g.set("kernel_release", h.kernel_release());
    g.set("criu_version", h.criu_version());
    g.set("agent_version", h.agent_version());
    g.set("protocol_version", h.protocol_version());
    g.set("uptime_seconds", h.uptime_ms() / 1000.0);
    j.set("vm", g);
  }
  return j;
}

void print_versions(const Versions& v, const vm::VmSession* session) {
  std::vector<std::vector<std::string>> rows;
  auto row = [&](std::string what, std::string value) {
    rows.push_back({std::move(what), sanitize(value)});
  };
  row("kcr", fmt::format("{} (protocol {})", k_version, k_protocol_version));
  row("host kernel", fmt::format("{} ({})", v.kernel, v.arch));
  row("QEMU", v.qemu);
  row("libvirt", v.libvirt);
  row("host CRIU", v.host_criu ? *v.host_criu : "not installed (CRIU runs in the guest)");
  if (v.image_info) {
    const auto& i = *v.image_info;
    row("image", fmt::format("{} (built {})", i.name, i.created));
    row("  agent", i.agent_version);
    row("  CRIU", i.criu_version);
    row("  kernel", i.kernel_release);
  } else {
    row("image", v.image + ": " + v.image_error);
  }
  if (session) {
    const auto& h = session->hello();
    row("VM", fmt::format("{} (image {})", session->info().name, session->info().image));
    row("  agent", fmt::format("{} (protocol {})", h.agent_version(), h.protocol_version()));
    row("  CRIU", h.criu_version().empty() ? "missing" : h.criu_version());
    row("  kernel", h.kernel_release());
  }
  for (const auto& r : rows) fmt::print("{:<13}{}\n", r[0] + ":", r[1]);
}

void version(Context& ctx, const std::string& vm_name) {
  const auto& cfg = ctx.config();
  std::optional<vm::VmSession> session;
  if (!vm_name.empty()) session.emplace(cfg, vm_name);
  Versions v = gather(cfg);
  const vm::VmSession* s = session ? &*session : nullptr;
  if (ctx.json) return print_json(versions_json(v, s));
  print_versions(v, s);
}

}  // namespace

void register_version_command(CLI::App& app, Context& ctx) {
  auto vm_name = std::make_shared<std::string>();
  auto* c = app.add_subcommand(
      "version", "Show the versions of kcr, QEMU, libvirt, CRIU, the guest image and a VM's guest");
  c->add_option("vm", *vm_name, "VM whose guest (kernel, CRIU, agent) to include");
  add_json_flag(c, ctx);
  c->footer(
      "What a bug report needs: kcr and its protocol, the host's kernel, QEMU, libvirt and\n"
      "CRIU (if installed), the default guest image's agent, CRIU and kernel; given a VM,\n"
      "what its agent says about its guest.\n"
      "Examples:\n  kcr version\n  kcr version demo --json");
  c->callback([&ctx, vm_name] { version(ctx, *vm_name); });
}

}  // namespace kcr::cli
