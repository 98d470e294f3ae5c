// Hidden commands for kcr's build and shells, not for users: '__describe' writes the
// manual pages and completion scripts from the command definitions, '__complete' lists
// the names a completion script offers.
#include <fmt/core.h>

#include "cli/cmd_internal.hpp"
#include "cli/command_surface.hpp"
#include "cli/completion_script.hpp"
#include "cli/context.hpp"
#include "cli/man_page.hpp"
#include "core/checkpoint_store.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/scenario.hpp"
#include "images/image.hpp"
#include "vm/vm.hpp"

namespace kcr::cli {

namespace {

struct DescribeArgs {
  std::string man_dir, man_source, bash, zsh;
};

void describe(const CLI::App& app, const DescribeArgs& a) {
  CommandDoc root = describe_commands(app);
  // Every command an exit code row names must exist, or its page would miss the row.
  for (const auto& row : exit_codes()) {
    for (auto command : row.commands) {
      bool found = false;
      for_each_command(root, [&](const CommandDoc& c) { found = found || c.command() == command; });
      if (!found)
        throw Error("exit code table names unknown command '" + std::string(command) + "'");
    }
  }
  if (!a.man_dir.empty()) write_man_pages(root, a.man_source, a.man_dir);
  if (!a.bash.empty()) core::write_file_atomic(a.bash, bash_completion(root), 0644);
  if (!a.zsh.empty()) core::write_file_atomic(a.zsh, zsh_completion(root), 0644);
}

std::vector<std::string> names(Context& ctx, const std::string& kind, const std::string& vm_name) {
  std::vector<std::string> out;
  if (kind == "vm") {
    for (const auto& v : vm::list_vms(ctx.config())) {
      if (v.state == "running") out.push_back(v.name);
    }
  } else if (kind == "workload") {
    if (vm_name.empty()) throw Error("__complete workload needs a VM", {}, ExitCode::usage);
    vm::VmSession session(ctx.config(), vm_name);
    proto::Request req;
    req.mutable_ps();
    auto resp = session.call(req);  // the range below must not outlive it
    for (const auto& w : resp.ps().workloads()) out.push_back(sanitize(w.name()));
  } else if (kind == "checkpoint") {
    for (const auto& m : core::CheckpointStore(ctx.config().data_dir).list()) out.push_back(m.name);
  } else if (kind == "image") {
    for (const auto& i : images::list_images(ctx.config())) out.push_back(i.name);
  } else if (kind == "scenario") {
    for (const auto& s : core::scenarios()) out.push_back(s.name);
  }
  return out;
}

}  // namespace

void register_internal_commands(CLI::App& app, Context& ctx) {
  auto da = std::make_shared<DescribeArgs>();
  auto* d = app.add_subcommand("__describe",
                               "Write the man pages and completion scripts (run by the build)");
  d->group("");
  d->add_option("--man", da->man_dir, "Directory to write kcr.1 and kcr-COMMAND.1 into");
  d->add_option("--man-source", da->man_source, "Directory of the hand-written *.1.in sections")
      ->check(CLI::ExistingDirectory);
  d->add_option("--bash", da->bash, "File to write the bash completion script to");
  d->add_option("--zsh", da->zsh, "File to write the zsh completion script to");
  d->callback([&app, da] {
    if (!da->man_dir.empty() && da->man_source.empty()) {
      throw Error("--man needs --man-source", {}, ExitCode::usage);
    }
    describe(app, *da);
  });

  auto kind = std::make_shared<std::string>();
  auto vm_name = std::make_shared<std::string>();
  auto* c = app.add_subcommand("__complete", "Print names for shell completion, one a line");
  c->group("");
  c->add_option("kind", *kind, "What to list")
      ->required()
      ->check(CLI::IsMember({"vm", "workload", "checkpoint", "image", "scenario"}));
  c->add_option("vm", *vm_name, "The VM whose workloads to list");
  c->callback([&ctx, kind, vm_name] {
    for (const auto& n : names(ctx, *kind, *vm_name)) fmt::print("{}\n", n);
  });
}

}  // namespace kcr::cli
