#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <thread>

#include "cli/context.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/id_mapping.hpp"
#include "core/names.hpp"
#include "core/oci_bundle.hpp"
#include "core/signals.hpp"
#include "vm/copy.hpp"
#include "vm/rootfs.hpp"
#include "vm/vm.hpp"

namespace kcr::cli {

namespace {

// A stopped workload is still there (its pid, no exit status), like a running one.
bool exited(const proto::Workload& w) {
  return w.state() == "exited";
}

std::string exit_description(const proto::Workload& w) {
  if (!exited(w)) return w.state();
  if (w.exit_signal()) return "killed by " + core::signal_name(w.exit_signal());
  return "exited " + std::to_string(w.exit_code());
}

core::Json workload_json(const proto::Workload& w) {
  auto argv = core::Json::array();
  for (const auto& a : w.argv()) argv.push(a);
  auto j = core::Json::object();
  j.set("name", w.name());
  j.set("pid", w.pid());
  j.set("state", w.state());
  j.set("exit_code", exited(w) ? core::Json(w.exit_code()) : core::Json());
  j.set("exit_signal",
        w.exit_signal() ? core::Json(core::signal_name(w.exit_signal())) : core::Json());
  j.set("argv", argv);
  j.set("started_unix_ms", static_cast<long long>(w.started_unix_ms()));
  j.set("rootfs", w.rootfs_digest().empty() ? core::Json() : core::Json(w.rootfs_digest()));
  return j;
}

std::string join_argv(const google::protobuf::RepeatedPtrField<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    out += a.find_first_of(" \t'\"") == std::string::npos ? a : "'" + a + "'";
  }
  return out;
}

struct RunArgs {
  std::string vm, name, cwd, cgroupns = "host", memory, rootfs, hostname, bundle, user;
  uint64_t pids_limit = 0;
  std::vector<std::string> env, command, uidmap, gidmap;
};

// "UID[:GID]", numeric as in an OCI bundle's process.user (podman's --user takes names too).
proto::RunUser parse_user(const std::string& text) {
  auto number = [&](const std::string& s) {
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(s) > 4294967294ULL) {
      throw Error("--user '" + text + "' is not UID[:GID]", "give numbers: --user 1000:1000",
                  ExitCode::usage);
    }
    return static_cast<uint32_t>(std::stoull(s));
  };
  proto::RunUser u;
  auto colon = text.find(':');
  u.set_uid(number(text.substr(0, colon)));
  u.set_gid(colon == std::string::npos ? 0 : number(text.substr(colon + 1)));
  return u;
}

// What of an OCI bundle kcr run takes: its root, process, hostname, mounts and limits. A
// namespace or mount a workload in a VM cannot have is refused, naming the field.
RunArgs from_bundle(const RunArgs& given, const core::OciBundle& b, proto::RunRequest& r) {
  RunArgs a = given;
  auto has = [&](const char* ns) {
    return std::find(b.namespaces.begin(), b.namespaces.end(), ns) != b.namespaces.end();
  };
  for (const char* ns : {"pid", "mount", "ipc", "uts"}) {
    if (!has(ns)) {
      throw Error(std::string("config.json: linux.namespaces lacks \"") + ns +
                      "\": kcr runs every workload in pid, mount, ipc and uts namespaces of "
                      "its own",
                  "add {\"type\": \"" + std::string(ns) + "\"} to linux.namespaces",
                  ExitCode::usage);
    }
  }
  for (auto [ns, why] : {std::pair{"network",
                                   "a workload shares its VM's network (the VM is "
                                   "its sandbox)"},
                         {"cgroup",
                          "a workload with a root filesystem has no cgroup namespace "
                          "of its own yet"},
                         {"user",
                          "a workload with a root filesystem has no user namespace of "
                          "its own yet"}}) {
    if (has(ns)) {
      throw Error(
          std::string("config.json: linux.namespaces \"") + ns + "\" is not supported: " + why,
          "remove it from linux.namespaces", ExitCode::usage);
    }
  }
  for (std::size_t i = 0; i < b.mounts.size(); ++i) {
    const auto& m = b.mounts[i];
    auto* out = r.add_mounts();
    out->set_destination(m.destination);
    out->set_type(m.type);
    if (m.type == "bind") {
      // A bind of a path inside the bundle's own root filesystem, which goes into the guest
      // with it; a host path a workload inside a VM cannot reach.
      const std::string& root = b.root_path;
      if (m.source.size() <= root.size() + 1 || m.source.compare(0, root.size(), root) != 0 ||
          m.source[root.size()] != '/') {
        throw Error("config.json: mounts[" + std::to_string(i) + "] (" + m.destination +
                        ") binds the host path " + m.source +
                        ", which a workload inside a VM cannot reach",
                    "bind a path inside the bundle's root filesystem, or put the files there "
                    "(or kcr cp them in)",
                    ExitCode::usage);
      }
      out->set_source(m.source.substr(root.size()));
    }
    for (const auto& o : m.options) {
      if (o != "bind" && o != "rbind") out->add_options(o);
    }
  }
  a.rootfs = b.root_path;
  a.command = b.args;
  a.env = b.env;
  if (a.cwd.empty()) a.cwd = b.cwd;
  if (a.hostname.empty()) a.hostname = b.hostname;
  r.set_readonly_root(b.root_readonly);
  if (a.user.empty()) {
    auto* u = r.mutable_user();
    u->set_uid(b.uid);
    u->set_gid(b.gid);
    for (auto g : b.additional_gids) u->add_additional_gids(g);
  }
  if (a.memory.empty() && b.memory_limit) a.memory = std::to_string(b.memory_limit);
  if (a.pids_limit == 0 && b.pids_limit > 0) a.pids_limit = static_cast<uint64_t>(b.pids_limit);
  return a;
}

void run(Context& ctx, const RunArgs& given) {
  core::validate_name("workload name", given.name);
  proto::Request req;
  auto* r = req.mutable_run();
  RunArgs a = given;
  if (!given.bundle.empty()) {
    if (!given.command.empty() || !given.rootfs.empty()) {
      throw Error("--bundle takes the command and the root filesystem from its config.json",
                  "give no command and no --rootfs with --bundle", ExitCode::usage);
    }
    a = from_bundle(given, core::read_oci_bundle(given.bundle), *r);
  } else if (a.command.empty()) {
    throw Error("no command to run", "give it after --: kcr run VM --name N -- COMMAND",
                ExitCode::usage);
  }
  if (!a.user.empty()) *r->mutable_user() = parse_user(a.user);
  if ((r->has_user() || r->readonly_root()) && a.rootfs.empty()) {
    throw Error("--user needs a root filesystem of its own", "add --rootfs DIR|TAR",
                ExitCode::usage);
  }
  for (const auto& e : a.env) {
    if (e.find('=') == std::string::npos || e.front() == '=') {
      throw Error("--env '" + e + "' is not KEY=VALUE", {}, ExitCode::usage);
    }
  }
  if (!a.hostname.empty()) core::validate_name("hostname", a.hostname);
  if (!a.rootfs.empty() && (!a.uidmap.empty() || a.cgroupns == "private")) {
    throw Error("--rootfs cannot be combined with --uidmap or --cgroupns private yet", {},
                ExitCode::usage);
  }
  vm::VmSession session(ctx.config(), a.vm);
  r->set_name(a.name);
  r->set_hostname(a.hostname);
  if (!a.rootfs.empty()) {
    // Checked and stored on the host (kept for restores in fresh VMs), then put into the VM.
    auto show = [&ctx](const core::TransferProgress& p) { transfer_progress(ctx, p); };
    core::RootfsBase base = vm::import_rootfs(ctx.config(), a.rootfs, show);
    vm::put_base(session, base.digest, base.tar_path, show);
    r->set_rootfs_digest(base.digest);
  }
  for (const auto& s : a.command) r->add_argv(s);
  for (const auto& e : a.env) r->add_env(e);
  r->set_cwd(a.cwd);
  for (const auto& m : a.uidmap) *r->add_uid_map() = core::parse_id_mapping(m, "--uidmap");
  for (const auto& m : a.gidmap) *r->add_gid_map() = core::parse_id_mapping(m, "--gidmap");
  if (!a.uidmap.empty()) core::validate_id_maps(r->uid_map(), "--uidmap");
  if (!a.gidmap.empty()) {
    if (a.uidmap.empty()) throw Error("--gidmap needs --uidmap", {}, ExitCode::usage);
    core::validate_id_maps(r->gid_map(), "--gidmap");
  }
  r->set_cgroupns(a.cgroupns == "private");
  if (!a.memory.empty()) r->set_memory_max(core::parse_memory_limit(a.memory, "--memory"));
  r->set_pids_max(a.pids_limit);
  auto resp = session.call(req);
  const auto& w = resp.run().workload();
  if (ctx.json) return print_json(workload_json(w));
  fmt::print("workload '{}' running in VM '{}' (guest pid {})\n", sanitize(w.name()), a.vm,
             w.pid());
}

struct ExecArgs {
  std::string vm, workload, cwd;
  std::vector<std::string> env, command;
  unsigned timeout_s = 60;
};

void exec(Context& ctx, const ExecArgs& a) {
  core::validate_name("workload name", a.workload);
  vm::VmSession session(ctx.config(), a.vm);
  proto::Request req;
  auto* e = req.mutable_exec();
  e->set_workload(a.workload);
  for (const auto& s : a.command) e->add_argv(s);
  for (const auto& s : a.env) e->add_env(s);
  e->set_cwd(a.cwd);
  e->set_timeout_ms(a.timeout_s * 1000);
  auto resp = session.call(req, std::chrono::seconds(a.timeout_s + 30));
  const auto& x = resp.exec();
  int code = x.exit_signal() ? 128 + x.exit_signal() : x.exit_code();
  if (ctx.json) {
    auto j = core::Json::object();
    j.set("exit_code", x.exit_code());
    j.set("exit_signal",
          x.exit_signal() ? core::Json(core::signal_name(x.exit_signal())) : core::Json());
    j.set("stdout", x.stdout_data());
    j.set("stderr", x.stderr_data());
    j.set("truncated", x.truncated());
    print_json(j);
  } else {
    std::fwrite(x.stdout_data().data(), 1, x.stdout_data().size(), stdout);
    std::fflush(stdout);
    std::fwrite(x.stderr_data().data(), 1, x.stderr_data().size(), stderr);
    if (x.truncated()) fmt::print(stderr, "kcr: output was truncated by the agent\n");
  }
  ctx.exit_code = code;
}

void ps(Context& ctx, const std::string& vm_name) {
  vm::VmSession session(ctx.config(), vm_name);
  proto::Request req;
  req.mutable_ps();
  auto resp = session.call(req);
  if (ctx.json) {
    auto arr = core::Json::array();
    for (const auto& w : resp.ps().workloads()) arr.push(workload_json(w));
    return print_json(arr);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& w : resp.ps().workloads()) {
    rows.push_back({sanitize(w.name()), exited(w) ? "-" : std::to_string(w.pid()),
                    sanitize(exit_description(w)), sanitize(join_argv(w.argv()))});
  }
  print_table({"NAME", "PID", "STATE", "COMMAND"}, rows);
}

volatile std::sig_atomic_t g_interrupted = 0;

void logs(Context& ctx, const std::string& vm_name, const std::string& workload, bool follow) {
  core::validate_name("workload name", workload);
  vm::VmSession session(ctx.config(), vm_name);
  uint64_t offset = 0;
  if (follow) {
    std::signal(SIGINT, [](int) { g_interrupted = 1; });
    std::signal(SIGTERM, [](int) { g_interrupted = 1; });
  }
  for (;;) {
    proto::Request req;
    auto* l = req.mutable_logs();
    l->set_workload(workload);
    l->set_offset(offset);
    l->set_max_bytes(1 << 20);
    auto resp = session.call(req);
    const auto& data = resp.logs().data();
    if (resp.logs().next_offset() < offset || resp.logs().next_offset() > offset + data.size()) {
      throw Error("VM '" + vm_name + "': the agent returned an inconsistent log offset");
    }
    std::fwrite(data.data(), 1, data.size(), stdout);
    std::fflush(stdout);
    offset = resp.logs().next_offset();
    if (!data.empty()) continue;
    if (!follow || !resp.logs().running() || g_interrupted) break;
    for (int i = 0; i < 5 && !g_interrupted; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

void kill(Context& ctx, const std::string& vm_name, const std::string& workload,
          const std::string& signal, bool all) {
  core::validate_name("workload name", workload);
  int sig = core::parse_signal(signal);
  vm::VmSession session(ctx.config(), vm_name);
  proto::Request req;
  req.mutable_kill()->set_workload(workload);
  req.mutable_kill()->set_signal(sig);
  req.mutable_kill()->set_all(all);
  session.call(req);
  if (!ctx.quiet) fmt::print("sent {} to workload '{}'\n", core::signal_name(sig), workload);
}

}  // namespace

struct CpArgs {
  std::string source, dest;
};

// kcr cp SRC DEST: one side on the host, the other VM:WORKLOAD:/PATH.
void cp(Context& ctx, const CpArgs& a) {
  auto from = vm::parse_copy_place(a.source);
  auto to = vm::parse_copy_place(a.dest);
  if (from.in_workload() == to.in_workload()) {
    throw Error(
        "kcr cp copies between the host and a workload: one of the two must be "
        "VM:WORKLOAD:/PATH, the other a host path",
        "kcr cp ./tool demo:web:/usr/local/bin/tool, or kcr cp demo:web:/tmp/out ./out",
        ExitCode::usage);
  }
  const auto& in = from.in_workload() ? from : to;
  vm::VmSession session(ctx.config(), in.vm);
  auto on_transfer = [&ctx](const core::TransferProgress& p) { transfer_progress(ctx, p); };
  auto r = to.in_workload()
               ? vm::copy_into_workload(session, from.path, to.workload, to.path, on_transfer)
               : vm::copy_from_workload(session, from.workload, from.path, to.path, on_transfer);
  if (ctx.json) {
    auto j = core::Json::object();
    j.set("target", r.target);
    j.set("files", r.files);
    j.set("directories", r.directories);
    j.set("links", r.links);
    j.set("skipped", r.skipped);
    j.set("bytes", r.bytes);
    return print_json(j);
  }
  if (ctx.quiet) return;
  std::string where = to.in_workload() ? to.vm + ":" + to.workload + ":" + r.target : r.target;
  fmt::print(
      "copied {} file{}, {} director{}, {} link{} ({}) to {}{}\n", r.files, r.files == 1 ? "" : "s",
      r.directories, r.directories == 1 ? "y" : "ies", r.links, r.links == 1 ? "" : "s",
      format_bytes(r.bytes), sanitize(where),
      r.skipped ? fmt::format("; {} device, FIFO or socket entries skipped", r.skipped) : "");
}

void register_workload_commands(CLI::App& app, Context& ctx) {
  auto ra = std::make_shared<RunArgs>();
  auto* r = app.add_subcommand(
      "run", "Start a workload in a VM, in its own PID, mount, UTS and IPC namespaces");
  r->add_option("vm", ra->vm, "VM to run in")->required();
  r->add_option("--name", ra->name, "Name of the workload (unique in the VM)")->required();
  // One value per -e: a repeatable option left to take many would also swallow the "--" that
  // starts the command, and the command's own options would then look like kcr's.
  r->add_option("-e,--env", ra->env,
                "Environment variable KEY=VALUE (repeatable; default PATH, HOME, TERM)")
      ->allow_extra_args(false);
  r->add_option("--cwd", ra->cwd, "Working directory inside the workload (default /)");
  r->add_option("--uidmap", ra->uidmap,
                "A user namespace of its own: container uids CONTAINER_ID.. are host uids "
                "HOST_ID.. (CONTAINER_ID:HOST_ID:SIZE, repeatable; 0 must be mapped)")
      ->allow_extra_args(false);
  r->add_option("--gidmap", ra->gidmap,
                "The same for gids (CONTAINER_ID:HOST_ID:SIZE, repeatable; default: --uidmap's)")
      ->allow_extra_args(false);
  r->add_option("-m,--memory", ra->memory,
                "Memory limit of its own cgroup v2 group (256m, 1g; podman's words); it holds "
                "again after a restore");
  r->add_option("--pids-limit", ra->pids_limit,
                "Most processes and threads in its cgroup (pids.max); it holds again after a "
                "restore")
      ->check(CLI::Range(uint64_t{1}, uint64_t{4194304}));
  r->add_option("--cgroupns", ra->cgroupns,
                "private: a cgroup namespace of its own, rooted at cgroup /kcr/NAME (default host)")
      ->check(CLI::IsMember({"host", "private"}));
  r->add_option("--rootfs", ra->rootfs,
                "Root filesystem of its own: a directory, or a tar archive (.tar, .tar.gz, "
                ".tar.zst: podman export), under a writable layer of its own");
  r->add_option("--hostname", ra->hostname, "Its hostname (default: the workload's name)");
  r->add_option("--bundle", ra->bundle,
                "An OCI runtime bundle (config.json and its root filesystem, as runc takes it): "
                "its process, root, hostname, mounts and limits; no command then");
  r->add_option("-u,--user", ra->user,
                "UID[:GID] the command runs as (with --rootfs or --bundle; default root)");
  r->add_option("command", ra->command, "Command and arguments, after -- (none with --bundle)");
  add_json_flag(r, ctx);
  r->footer(
      "The workload gets a private /tmp and writes stdout/stderr to a log read with kcr logs.\n"
      "With --rootfs its root is that filesystem, its changes its own: it gets /proc, a\n"
      "minimal /dev, /dev/pts, /dev/shm, a read-only /sys, a /run of its own and kcr's\n"
      "/etc/hosts, /etc/hostname and /etc/resolv.conf; the guest's files are not visible.\n"
      "Its changes travel with each checkpoint (images/rootfs-diff.tar); the base is kept\n"
      "on the host (DATA_DIR/rootfs) and put into a fresh VM at restore or migrate.\n"
      "With --uidmap its namespaces belong to a user namespace of its own (podman's words).\n"
      "Examples:\n  kcr run demo --name counter -- sh -c 'i=0; while :; do i=$((i+1)); echo $i > "
      "/tmp/c; sleep 1; done'\n"
      "  kcr run demo --name userns --uidmap 0:100000:65536 --cgroupns private -- sleep 1000\n"
      "  kcr run demo --name small --memory 64m --pids-limit 32 -- sh -c 'sleep 1000'\n"
      "  kcr run demo --name web --rootfs ./rootfs.tar -- python3 -m http.server 8000\n"
      "  kcr run demo --name app --bundle ./bundle   # runc's layout; --memory etc. override it");
  r->callback([&ctx, ra] { run(ctx, *ra); });

  auto ea = std::make_shared<ExecArgs>();
  auto* e = app.add_subcommand("exec",
                               "Run a command inside a workload's namespaces and print its output");
  e->add_option("vm", ea->vm, "VM")->required();
  e->add_option("workload", ea->workload, "Workload whose namespaces the command joins")
      ->required();
  e->add_option("-e,--env", ea->env, "Environment variable KEY=VALUE (repeatable)")
      ->allow_extra_args(false);
  e->add_option("--cwd", ea->cwd, "Working directory (default /)");
  e->add_option("--timeout", ea->timeout_s, "Seconds before the command is killed (default 60)")
      ->check(CLI::Range(1, 86400));
  e->add_option("command", ea->command, "Command and arguments, after --")->required();
  add_json_flag(e, ctx);
  e->footer(
      "Exits with the command's exit status (128+N when killed by signal N).\n"
      "Example:\n  kcr exec demo counter -- cat /tmp/c");
  e->callback([&ctx, ea] { exec(ctx, *ea); });

  auto ca = std::make_shared<CpArgs>();
  auto* c = app.add_subcommand("cp", "Copy files between the host and a workload, like podman cp");
  c->add_option("source", ca->source, "A host path, or VM:WORKLOAD:/PATH")->required();
  c->add_option("dest", ca->dest, "A host path, or VM:WORKLOAD:/PATH")->required();
  add_json_flag(c, ctx);
  c->footer(
      "Files, directories (recursively) and links (as links); modes are kept, set-id bits\n"
      "are dropped on the host. Paths in the workload resolve inside its root: '..' and\n"
      "links cannot lead out of it. A destination that is a directory receives the source\n"
      "under its own name. Each file appears whole or not at all; a copy to the host appears\n"
      "only complete. At most 16 GiB at a time.\n"
      "Examples:\n  kcr cp ./tool demo:web:/usr/local/bin/tool\n"
      "  kcr cp demo:web:/tmp/out ./out");
  c->callback([&ctx, ca] { cp(ctx, *ca); });

  auto ps_vm = std::make_shared<std::string>();
  auto* p = app.add_subcommand("ps", "List the workloads of a VM, running, stopped and exited");
  p->add_option("vm", *ps_vm, "VM")->required();
  add_json_flag(p, ctx);
  p->footer(
      "STATE is running, stopped (its init or command is, e.g. left stopped by an interrupted\n"
      "checkpoint: kcr kill VM W --signal CONT --all resumes it) or how it exited.\n"
      "Example:\n  kcr ps demo");
  p->callback([&ctx, ps_vm] { ps(ctx, *ps_vm); });

  auto lv = std::make_shared<std::array<std::string, 2>>();
  auto follow = std::make_shared<bool>(false);
  auto* l = app.add_subcommand("logs", "Print a workload's stdout and stderr");
  l->add_option("vm", (*lv)[0], "VM")->required();
  l->add_option("workload", (*lv)[1], "Workload")->required();
  l->add_flag("-f,--follow", *follow,
              "Keep printing new output until the workload exits or Ctrl-C");
  l->footer("Example:\n  kcr logs demo counter --follow");
  l->callback([&ctx, lv, follow] { logs(ctx, (*lv)[0], (*lv)[1], *follow); });

  auto kv = std::make_shared<std::array<std::string, 3>>();
  (*kv)[2] = "TERM";
  auto* k = app.add_subcommand("kill",
                               "Send a signal to a workload (its init forwards it to the command)");
  k->add_option("vm", (*kv)[0], "VM")->required();
  k->add_option("workload", (*kv)[1], "Workload")->required();
  k->add_option("-s,--signal", (*kv)[2], "Signal name or number (default TERM)");
  auto all = std::make_shared<bool>(false);
  k->add_flag("-a,--all", *all,
              "Signal every process of the workload, not only its init (e.g. CONT for a tree "
              "left stopped by an interrupted checkpoint)");
  k->footer(
      "Example:\n  kcr kill demo counter --signal KILL\n  kcr kill demo counter --signal CONT "
      "--all");
  k->callback([&ctx, kv, all] { kill(ctx, (*kv)[0], (*kv)[1], (*kv)[2], *all); });
}

}  // namespace kcr::cli
