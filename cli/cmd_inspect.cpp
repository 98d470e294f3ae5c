// kcr checkpoints inspect and diff: what a checkpoint holds, read from CRIU's
// images by kcr itself (core/checkpoint_inspect.hpp), as checkpointctl shows it.
#include <fmt/core.h>

#include <filesystem>
#include <map>

#include "cli/context.hpp"
#include "core/checkpoint_archive.hpp"
#include "core/checkpoint_inspect.hpp"
#include "core/error.hpp"
#include "core/names.hpp"
#include "vm/engine/archive.hpp"

namespace kcr::cli {

namespace {

// One dump to look at: a stored checkpoint or an archive, its final dump or
// pre-dump round K (NAME@K).
struct Dump {
  std::string label;  // as the user named it
  core::CheckpointManifest manifest;
  std::string where;  // the store directory or the archive file
  unsigned round = 0;
  core::Inspection inspection;
};

Dump load_dump(Context& ctx, const std::string& spec) {
  core::CheckpointStore store(ctx.config().data_dir);
  Dump d;
  d.label = spec;
  std::string name = spec;
  std::error_code ec;
  auto at = spec.rfind('@');
  if (at != std::string::npos && at + 1 < spec.size() &&
      spec.find_first_not_of("0123456789", at + 1) == std::string::npos &&
      !std::filesystem::is_regular_file(spec, ec)) {
    name = spec.substr(0, at);
    if (spec.size() - at - 1 > 3) {
      throw Error("no pre-dump round " + spec.substr(at + 1) + " in '" + spec + "'", {},
                  ExitCode::usage);
    }
    d.round = static_cast<unsigned>(std::stoul(spec.substr(at + 1)));
    if (d.round == 0) {
      throw Error("'" + spec + "': pre-dump rounds count from 1",
                  "NAME is the final dump, NAME@1 the first pre-dump round", ExitCode::usage);
    }
  }
  core::ImageFiles images;
  if (core::is_valid_name(name) && store.exists(name)) {
    d.manifest = store.load(name);
    d.where = store.dir(name);
    images = core::load_store_images(store, d.manifest, d.round);
  } else if (std::filesystem::is_regular_file(name, ec)) {
    d.where = name;
    progress(ctx, "reading " + name);
    images = core::load_archive_images(name, d.round, &d.manifest);
  } else {
    throw Error("no checkpoint or archive named '" + name + "'",
                "kcr checkpoints ls lists the checkpoints in " + store.root());
  }
  d.inspection = core::inspect_images(images);
  return d;
}

// A tree drawn as checkpointctl draws it.
struct Node {
  std::string label;
  std::vector<Node> kids;
};

void draw(const Node& n, const std::string& indent, bool last, bool top) {
  if (top) {
    fmt::print("{}\n", n.label);
  } else {
    fmt::print("{}{}{}\n", indent, last ? "└── " : "├── ", n.label);
  }
  std::string next = top ? "" : indent + (last ? "    " : "│   ");
  for (std::size_t i = 0; i < n.kids.size(); ++i) {
    draw(n.kids[i], next, i + 1 == n.kids.size(), false);
  }
}

struct InspectArgs {
  std::string name;
  bool ps_tree = false, files = false, sockets = false, mounts = false, memory = false,
       stats = false, all = false;
};

std::string memory_line(const core::InspectedMemory& m) {
  return fmt::format("{} vmas, {} mapped, {} pages dumped ({}){}", m.vmas,
                     format_bytes(m.mapped_bytes), m.dumped_pages,
                     format_bytes(m.dumped_pages * 4096),
                     m.parent_pages ? fmt::format(", {} pages in the parent", m.parent_pages) : "");
}

Node process_tree(const core::Inspection& in, const InspectArgs& a) {
  std::map<uint32_t, std::vector<const core::InspectedProcess*>> kids;
  std::map<uint32_t, bool> known;
  for (const auto& p : in.processes) known[p.pid] = true;
  std::vector<const core::InspectedProcess*> roots;
  for (const auto& p : in.processes) {
    if (p.ppid != 0 && known.count(p.ppid) && p.ppid != p.pid) {
      kids[p.ppid].push_back(&p);
    } else {
      roots.push_back(&p);
    }
  }
  std::map<uint32_t, bool> drawn;
  std::function<Node(const core::InspectedProcess&)> node = [&](const core::InspectedProcess& p) {
    drawn[p.pid] = true;
    Node n{fmt::format("[{}]  {}{}", p.pid, sanitize(p.comm),
                       p.state == "alive" ? "" : " (" + p.state + ")"),
           {}};
    if (a.files || a.all) {
      Node files{"Open files", {}};
      for (const auto& f : p.fds) {
        files.kids.push_back({fmt::format("[{} {}]  {}", f.type, f.fd, sanitize(f.what)), {}});
      }
      if (!p.cwd.empty()) files.kids.push_back({"[cwd]  " + sanitize(p.cwd), {}});
      if (!p.root.empty()) files.kids.push_back({"[root]  " + sanitize(p.root), {}});
      n.kids.push_back(std::move(files));
    }
    if ((a.memory || a.all) && p.memory)
      n.kids.push_back({"Memory: " + memory_line(*p.memory), {}});
    for (const auto* k : kids[p.pid]) {
      if (!drawn[k->pid]) n.kids.push_back(node(*k));
    }
    return n;
  };
  Node tree{"Process tree", {}};
  for (const auto* r : roots) tree.kids.push_back(node(*r));
  return tree;
}

void inspect(Context& ctx, const InspectArgs& a) {
  auto d = load_dump(ctx, a.name);
  const auto& m = d.manifest;
  const auto& in = d.inspection;
  if (ctx.json) {
    auto j = core::inspection_json(in);
    j.set("name", m.name);
    j.set("source", d.where);
    j.set("round", d.round);
    j.set("workload", m.workload);
    j.set("vm", m.vm);
    j.set("image", m.image);
    j.set("criu_version", m.criu_version);
    j.set("kernel_release", m.kernel_release);
    j.set("created", m.created);
    j.set("pre_dump_rounds", m.pre_dumps.size());
    return print_json(j);
  }
  Node top{fmt::format("{}{}", sanitize(m.name),
                       d.round ? fmt::format(" (pre-dump round {})", d.round) : ""),
           {}};
  top.kids.push_back({"Workload: " + sanitize(m.workload) + " in VM " + sanitize(m.vm) +
                          " (image " + sanitize(m.image) + ")",
                      {}});
  top.kids.push_back({"Created: " + m.created, {}});
  top.kids.push_back(
      {"CRIU: " + sanitize(m.criu_version) + ", kernel " + sanitize(m.kernel_release), {}});
  top.kids.push_back({"Checkpoint size: " + format_bytes(in.image_bytes),
                      {{"Memory pages size: " + format_bytes(in.pages_bytes), {}}}});
  if (!m.pre_dumps.empty() && d.round == 0) {
    top.kids.push_back({fmt::format("Pre-dump rounds: {} (inspect one as {}@K)", m.pre_dumps.size(),
                                    sanitize(m.name)),
                        {}});
  }
  if (d.round) {
    top.kids.push_back(
        {"A pre-dump holds memory only: processes, files and sockets are the final dump's", {}});
  }
  top.kids.push_back({fmt::format("Processes: {}", in.processes.size()), {}});
  if (a.ps_tree || a.files || a.memory || a.all) top.kids.push_back(process_tree(in, a));
  if (a.sockets || a.all) {
    Node s{fmt::format("Sockets: {}", in.sockets.size()), {}};
    for (const auto& k : in.sockets) {
      std::string peer = k.family == "unix"
                             ? (k.peer_ino ? fmt::format(" peer {}", k.peer_ino) : "")
                             : (k.state == "listen" ? "" : " -> " + k.peer);
      s.kids.push_back(
          {fmt::format("[{} {}]  {} {}{} {} (ino {})", k.family, k.type,
                       sanitize(k.local.empty() ? "(unnamed)" : k.local), "", peer, k.state, k.ino),
           {}});
    }
    top.kids.push_back(std::move(s));
  }
  if (a.mounts || a.all) {
    Node mn{fmt::format("Mounts: {}", in.mounts.size()), {}};
    for (const auto& k : in.mounts) {
      mn.kids.push_back(
          {fmt::format("{}  {} {}{}", sanitize(k.mountpoint), k.fstype, sanitize(k.source),
                       k.external ? " (external" +
                                        (k.ext_key.empty() ? "" : " " + sanitize(k.ext_key)) + ")"
                                  : ""),
           {}});
    }
    top.kids.push_back(std::move(mn));
  }
  if (a.stats || a.all) {
    Node st{"CRIU dump statistics", {}};
    if (in.stats) {
      st.kids.push_back({fmt::format("Freezing time: {} us", in.stats->freezing_time), {}});
      st.kids.push_back({fmt::format("Frozen time: {} us", in.stats->frozen_time), {}});
      st.kids.push_back({fmt::format("Memory dump time: {} us", in.stats->memdump_time), {}});
      st.kids.push_back({fmt::format("Memory write time: {} us", in.stats->memwrite_time), {}});
      st.kids.push_back({fmt::format("Pages scanned: {}", in.stats->pages_scanned), {}});
      st.kids.push_back({fmt::format("Pages written: {}", in.stats->pages_written), {}});
    } else {
      st.kids.push_back({"none (no stats-dump in this dump)", {}});
    }
    top.kids.push_back(std::move(st));
  }
  draw(top, "", true, true);
}

void diff(Context& ctx, const std::string& a_spec, const std::string& b_spec) {
  auto a = load_dump(ctx, a_spec);
  auto b = load_dump(ctx, b_spec);
  auto d = core::diff_inspections(a.inspection, b.inspection);
  if (ctx.json) {
    auto j = core::diff_json(d);
    j.set("a", a_spec);
    j.set("b", b_spec);
    return print_json(j);
  }
  fmt::print("{} -> {}\n", sanitize(a_spec), sanitize(b_spec));
  if (d.empty()) {
    fmt::print("no change in the process tree, open files, sockets or memory\n");
    return;
  }
  if (!d.added.empty() || !d.removed.empty() || !d.changed.empty()) {
    fmt::print("Processes:\n");
    for (const auto& p : d.removed)
      fmt::print("  - [{}] {} (ppid {})\n", p.pid, sanitize(p.comm), p.ppid);
    for (const auto& p : d.added)
      fmt::print("  + [{}] {} (ppid {})\n", p.pid, sanitize(p.comm), p.ppid);
    for (const auto& c : d.changed) fmt::print("  ~ [{}] {}\n", c.pid, sanitize(c.what));
  }
  if (!d.fds.empty()) {
    fmt::print("Open files:\n");
    for (const auto& f : d.fds) {
      fmt::print("  {} [{}] fd {}: {} {}{}\n", f.sign, f.pid, f.fd.fd, f.fd.type,
                 sanitize(f.fd.what), f.sign == '~' ? " (was " + sanitize(f.before) + ")" : "");
    }
  }
  if (!d.sockets_added.empty() || !d.sockets_removed.empty() || !d.sockets_changed.empty()) {
    fmt::print("Sockets:\n");
    for (const auto& s : d.sockets_removed) {
      fmt::print("  - {} {} {} {} (ino {})\n", s.family, s.type, sanitize(s.local), s.state, s.ino);
    }
    for (const auto& s : d.sockets_added) {
      fmt::print("  + {} {} {} {} (ino {})\n", s.family, s.type, sanitize(s.local), s.state, s.ino);
    }
    for (const auto& s : d.sockets_changed) {
      fmt::print("  ~ ino {}: {} -> {}\n", s.ino, s.before, s.after);
    }
  }
  if (!d.memory.empty()) {
    fmt::print("Memory:\n");
    for (const auto& m : d.memory) {
      fmt::print("  [{}] {} -> {}\n", m.pid, memory_line(m.before), memory_line(m.after));
    }
  }
}

}  // namespace

// Adds inspect and diff to the checkpoints group.
void register_inspect_commands(CLI::App* cps, Context& ctx) {
  auto ia = std::make_shared<InspectArgs>();
  auto* in = cps->add_subcommand(
      "inspect", "Show what a checkpoint holds: processes, files, sockets, mounts, memory");
  in->add_option("name", ia->name, "Checkpoint or archive file; NAME@K for pre-dump round K")
      ->required();
  in->add_flag("--ps-tree", ia->ps_tree, "Show the process tree");
  in->add_flag("--files", ia->files, "Show each process's open files, cwd and root");
  in->add_flag("--sockets", ia->sockets, "Show the sockets");
  in->add_flag("--mounts", ia->mounts, "Show the mounts of the workload's mount namespace");
  in->add_flag("--memory", ia->memory, "Show each process's memory: vmas, mapped, pages dumped");
  in->add_flag("--stats", ia->stats, "Show CRIU's dump statistics");
  in->add_flag("--all", ia->all, "Show everything");
  add_json_flag(in, ctx);
  in->footer(
      "kcr reads CRIU's image files itself (an archive is checked as import checks it,\n"
      "nothing is written); --json always holds everything.\n"
      "Examples:\n  kcr checkpoints inspect counter-1 --ps-tree --files\n"
      "  kcr checkpoints inspect counter.tar.zst --all\n"
      "  kcr checkpoints inspect moved@1 --memory --json");
  in->callback([&ctx, ia] { inspect(ctx, *ia); });

  auto names = std::make_shared<std::vector<std::string>>();
  auto* df = cps->add_subcommand(
      "diff", "Show what changed between two checkpoints: processes, files, sockets, memory");
  df->add_option("checkpoints", *names,
                 "Two checkpoints or archive files, A then B; NAME@K for pre-dump round K")
      ->required()
      ->expected(2);
  add_json_flag(df, ctx);
  df->footer(
      "Processes are matched by pid, files by fd, sockets by inode.\nExamples:\n"
      "  kcr checkpoints diff counter-1 counter-2\n"
      "  kcr checkpoints diff moved@1 moved@2 --json");
  df->callback([&ctx, names] { diff(ctx, (*names)[0], (*names)[1]); });
}

}  // namespace kcr::cli
