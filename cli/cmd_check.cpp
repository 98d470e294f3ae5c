#include <fmt/core.h>

#include <optional>

#include "cli/context.hpp"
#include "core/error.hpp"
#include "images/image.hpp"
#include "vm/accel.hpp"
#include "vm/vm.hpp"

namespace kcr::cli {

namespace {

// "NAME (kernel K, CRIU V)", or "missing: WHY" with FOUND false.
std::string image_state(const core::Config& cfg, const std::string& name, bool& found) {
  try {
    auto image = images::find_image(cfg, name);
    found = true;
    return image.name + " (kernel " + image.kernel_release + ", CRIU " + image.criu_version + ")";
  } catch (const Error& e) {
    found = false;
    return std::string("missing: ") + e.what();
  }
}

// criu check in the guest; adds "guest" to J, prints it unless --json, and
// returns whether CRIU is fine there.
bool check_guest(Context& ctx, vm::VmSession& session, core::Json& j) {
  proto::Request req;
  req.mutable_check();
  auto resp = session.call(req, std::chrono::seconds(120));
  const auto& c = resp.check();
  auto guest = core::Json::object();
  guest.set("kernel", c.kernel_release());
  guest.set("criu_version", c.criu_version());
  guest.set("agent_version", c.agent_version());
  guest.set("criu_ok", c.ok());
  guest.set("criu_check", c.output());
  j.set("guest", guest);
  if (!ctx.json) {
    fmt::print("guest kernel:  {}\n", sanitize(c.kernel_release()));
    fmt::print("guest CRIU:    {}\n", sanitize(c.criu_version()));
    fmt::print("agent:         {}\n", sanitize(c.agent_version()));
    fmt::print("criu check:    {}\n", c.ok() ? "ok" : "FAILED");
    std::string out = sanitize(c.output(), true);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    if (!out.empty()) {
      std::string indented = "  ";
      for (char ch : out) indented += ch == '\n' ? std::string("\n  ") : std::string(1, ch);
      fmt::print("{}\n", indented);
    }
  }
  return c.ok();
}

void check(Context& ctx, const std::string& vm_name) {
  const auto& cfg = ctx.config();
  auto j = core::Json::object();
  bool ok = true;
  std::optional<vm::VmSession> session;
  if (!vm_name.empty()) session.emplace(cfg, vm_name);

  // Host prerequisites, as the VM backend sees them.
  vm::Backend& backend = vm::backend_named(session ? session->info().backend : "qemu");
  std::string qemu_version = "missing";
  try {
    qemu_version = backend.version(cfg);
  } catch (const Error&) {
    ok = false;
  }
  std::string accel, accel_reason;
  try {
    if (cfg.accel == "auto") {
      // What the next boot will use: an openable /dev/kvm is not proof KVM works.
      auto choice = vm::auto_accel(cfg, backend);
      accel = choice.accel;
      accel_reason = choice.why;
    } else {
      accel = vm::to_string(vm::choose_accel(cfg.accel));
    }
  } catch (const Error& e) {
    accel = std::string("unusable: ") + e.what();
    ok = false;
  }
  // A running VM was booted already: its own image is what it came from, and neither that
  // image nor the configured default is needed for it any more, so neither can fail it.
  bool found = false;
  std::string image = session ? session->info().image : cfg.image;
  std::string image_line = image.empty() ? "-" : image_state(cfg, image, found);
  std::string default_line;
  if (!session) {
    ok = ok && found;
  } else {
    const std::string unneeded = " (VM '" + vm_name + "' runs without it)";
    if (!image.empty() && !found) image_line += unneeded;
    if (cfg.image != image) {
      default_line = image_state(cfg, cfg.image, found);
      if (!found) default_line += unneeded;
    }
  }
  auto host = core::Json::object();
  host.set("qemu", qemu_version);
  host.set("accel", accel);
  if (!accel_reason.empty()) host.set("accel_reason", accel_reason);
  host.set("image", image_line);
  if (!default_line.empty()) host.set("default_image", default_line);
  j.set("host", host);

  if (session) ok = check_guest(ctx, *session, j) && ok;
  j.set("ok", ok);
  if (ctx.json) {
    print_json(j);
  } else {
    fmt::print("host QEMU:     {}\n", qemu_version);
    fmt::print("acceleration:  {}{}\n", accel,
               accel_reason.empty() ? "" : " (" + accel_reason + ")");
    fmt::print("guest image:   {}\n", image_line);
    if (!default_line.empty()) fmt::print("default image: {}\n", default_line);
  }
  if (!ok) ctx.exit_code = static_cast<int>(ExitCode::failure);
}

}  // namespace

void register_check_command(CLI::App& app, Context& ctx) {
  auto vm_name = std::make_shared<std::string>();
  auto* c = app.add_subcommand(
      "check", "Check host prerequisites and, given a VM, run 'criu check' in its guest");
  c->add_option("vm", *vm_name, "VM whose guest to check");
  add_json_flag(c, ctx);
  c->footer(
      "Exits 1 when anything is missing or criu check does not say \"Looks good.\"\n"
      "Given a VM, the image is the one it booted; a missing image is only noted then.\n"
      "Example:\n  kcr check demo");
  c->callback([&ctx, vm_name] { check(ctx, *vm_name); });
}

}  // namespace kcr::cli
