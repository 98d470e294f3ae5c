#include "cli/checkpoint_output.hpp"

#include <cctype>

#include "core/criu_options.hpp"

namespace kcr::cli {

void CriuFlags::add_to(CLI::App* sub, Use use) {
  if (use == Use::dump) {
    sub->add_flag("--leave-running", leave_running,
                  "Leave the workload running after the checkpoint");
  }
  if (use != Use::restore) {
    sub->add_flag("--tcp-skip-in-flight", tcp_skip_in_flight, "Skip in-flight TCP connections");
    sub->add_flag("--link-remap", link_remap, "Allow checkpointing open files that were unlinked");
  }
  sub->add_flag("--tcp-established", tcp_established,
                "Checkpoint/restore established TCP connections");
  sub->add_flag("--ext-unix-sk", ext_unix_sk, "Allow external UNIX sockets");
  sub->add_flag("--file-locks", file_locks, "Checkpoint/restore file locks");
  sub->add_flag("--shell-job", shell_job, "Allow a workload attached to a terminal session");
  sub->add_option("--manage-cgroups-mode", manage_cgroups_mode,
                  "CRIU cgroups mode: soft, full, strict or ignore")
      ->check(CLI::IsMember({"soft", "full", "strict", "ignore"}));
}

proto::CriuOptions CriuFlags::to_proto() const {
  proto::CriuOptions o;
  o.set_leave_running(leave_running);
  o.set_tcp_established(tcp_established);
  o.set_tcp_skip_in_flight(tcp_skip_in_flight);
  o.set_ext_unix_sk(ext_unix_sk);
  o.set_file_locks(file_locks);
  o.set_link_remap(link_remap);
  o.set_shell_job(shell_job);
  core::validate_manage_cgroups_mode(manage_cgroups_mode);
  o.set_manage_cgroups_mode(manage_cgroups_mode);
  return o;
}

std::string CriuFlags::describe(const proto::CriuOptions& o) {
  std::string out;
  auto add = [&](bool on, const char* name) {
    if (on) out += (out.empty() ? "" : ", ") + std::string(name);
  };
  add(o.leave_running(), "leave-running");
  add(o.tcp_established(), "tcp-established");
  add(o.tcp_skip_in_flight(), "tcp-skip-in-flight");
  add(o.ext_unix_sk(), "ext-unix-sk");
  add(o.file_locks(), "file-locks");
  add(o.link_remap(), "link-remap");
  add(o.shell_job(), "shell-job");
  if (!o.manage_cgroups_mode().empty()) {
    out +=
        (out.empty() ? "" : ", ") + std::string("manage-cgroups-mode=") + o.manage_cgroups_mode();
  }
  return out.empty() ? "none" : out;
}

core::Json podman_dump_stats(const core::CheckpointManifest& m) {
  auto j = core::Json::object();
  j.set("runtime_checkpoint_duration", m.total_ms * 1000);
  j.set("criu_statistics", m.stats ? core::dump_stats_json(*m.stats) : core::Json::object());
  return j;
}

core::Json podman_restore_stats(const vm::RestoreResult& r) {
  auto j = core::Json::object();
  j.set("runtime_restore_duration", r.total_ms * 1000);
  auto s = core::Json::object();
  if (r.stats) {
    s.set("forking_time", r.stats->forking_time);
    s.set("restore_time", r.stats->restore_time);
    s.set("pages_restored", r.stats->pages_restored);
  }
  j.set("criu_statistics", s);
  return j;
}

core::Json manifest_json(const core::CheckpointManifest& m, const core::CheckpointStore& store) {
  auto j = core::Json::object();
  j.set("name", m.name);
  j.set("created", m.created);
  j.set("directory", store.dir(m.name));
  j.set("vm", m.vm);
  j.set("workload", m.workload);
  j.set("pid", m.pid);
  auto argv = core::Json::array();
  for (const auto& a : m.argv) argv.push(a);
  j.set("argv", argv);
  j.set("kcr_version", m.kcr_version);
  j.set("criu_version", m.criu_version);
  j.set("kernel_release", m.kernel_release);
  j.set("image", m.image);
  j.set("image_hash", m.image_hash);
  j.set("image_bytes", m.image_bytes());
  j.set("options", CriuFlags::describe(m.options));
  auto t = core::Json::object();
  t.set("dump_seconds", m.dump_ms / 1000.0);
  t.set("transfer_seconds", m.total_ms > m.dump_ms ? (m.total_ms - m.dump_ms) / 1000.0 : 0.0);
  t.set("total_seconds", m.total_ms / 1000.0);
  j.set("timings", t);
  if (!m.channel.empty()) j.set("channel", m.channel);
  j.set("statistics", podman_dump_stats(m));
  auto files = core::Json::array();
  for (const auto& f : m.files) {
    auto fj = core::Json::object();
    fj.set("path", f.path);
    fj.set("size", f.size);
    fj.set("sha256", f.sha256);
    files.push(fj);
  }
  j.set("files", files);
  return j;
}

namespace {

// A probe's reading as JSON: a number when it is one ("34"), else the text.
core::Json probe_value(const std::string& text) {
  bool digits = !text.empty() && text.size() <= 18;
  for (std::size_t i = 0; i < text.size() && digits; ++i) {
    digits = std::isdigit(static_cast<unsigned char>(text[i])) || (i == 0 && text[i] == '-');
  }
  if (digits && text != "-") return core::Json(std::stoll(text));
  return core::Json(text);
}

}  // namespace

void set_verdict(core::Json& j, const core::ProbeVerdict& v) {
  j.set("at_checkpoint", probe_value(v.before));
  j.set("after_restore", probe_value(v.after));
  j.set("survived", v.survived);
  if (!v.detail.empty()) j.set("detail", v.detail);
}

core::Json restore_json(const core::CheckpointManifest& m, const vm::RestoreResult& r) {
  auto j = core::Json::object();
  j.set("checkpoint", m.name);
  j.set("workload", r.workload.name());
  j.set("pid", r.workload.pid());
  auto t = core::Json::object();
  t.set("upload_seconds", r.upload_ms / 1000.0);
  t.set("restore_seconds", r.restore_ms / 1000.0);
  t.set("total_seconds", r.total_ms / 1000.0);
  j.set("timings", t);
  if (!r.channel.empty()) j.set("channel", r.channel);
  j.set("statistics", podman_restore_stats(r));
  return j;
}

}  // namespace kcr::cli
