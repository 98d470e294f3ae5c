#include <fmt/core.h>

#include <filesystem>

#include "cli/checkpoint_output.hpp"
#include "cli/context.hpp"
#include "core/checkpoint_archive.hpp"
#include "core/checkpoint_store.hpp"
#include "core/criu_options.hpp"
#include "core/error.hpp"
#include "core/names.hpp"
#include "vm/engine/archive.hpp"
#include "vm/engine/checkpoint.hpp"

namespace kcr::cli {

namespace {

// --compress when given, else what FILE's suffix says, else zstd (podman's default).
core::Compression compression_for(const std::string& file, const std::string& compress) {
  if (!compress.empty()) return core::compression_named(compress);
  return core::compression_for_path(file).value_or(core::Compression::zstd);
}

core::Json archive_json(const core::ArchiveSummary& a) {
  auto j = core::Json::object();
  j.set("file", a.path);
  j.set("compression", core::compression_name(a.compression));
  j.set("files", a.files);
  j.set("content_bytes", a.content_bytes);
  j.set("archive_bytes", a.archive_bytes);
  return j;
}

void print_exported(const std::string& name, const core::ArchiveSummary& a) {
  fmt::print("checkpoint '{}' exported to {}: {} files, {} ({} compressed with {})\n", name, a.path,
             a.files, format_bytes(a.content_bytes), format_bytes(a.archive_bytes),
             core::compression_name(a.compression));
}

struct CheckpointArgs {
  std::string vm, workload, name;
  std::string export_file, compress;
  bool print_stats = false;
  bool transfer_after_dump = false;
  CriuFlags flags;
};

void checkpoint(Context& ctx, const CheckpointArgs& a) {
  engine::CheckpointRequest req;
  req.vm = a.vm;
  req.workload = a.workload;
  req.name = a.name;
  req.options = a.flags.to_proto();
  req.transfer = a.transfer_after_dump ? vm::Transfer::after_dump : vm::Transfer::during_dump;
  if (!a.export_file.empty()) {
    auto out = engine::checkpoint_and_export(
        ctx.engine(), req, {a.export_file, compression_for(a.export_file, a.compress)});
    const auto& m = out.manifest;
    if (ctx.json) {
      auto j = manifest_json(m, core::CheckpointStore(ctx.config().data_dir));
      j.set("archive", archive_json(out.archive));
      return print_json(j);
    }
    fmt::print("checkpoint '{}': {} in {} (CRIU dump {}), workload {}\n", m.name,
               format_bytes(m.image_bytes()), format_seconds(m.total_ms / 1000.0),
               format_seconds(m.dump_ms / 1000.0),
               req.options.leave_running() ? "left running" : "stopped");
    print_exported(m.name, out.archive);
    if (a.print_stats) print_json(podman_dump_stats(m));
    return;
  }
  if (!a.compress.empty()) {
    throw Error("--compress applies to --export", "add --export FILE.tar.zst", ExitCode::usage);
  }
  auto m = engine::checkpoint(ctx.engine(), req);
  if (ctx.json) return print_json(manifest_json(m, core::CheckpointStore(ctx.config().data_dir)));
  fmt::print("checkpoint '{}': {} in {} (CRIU dump {}), workload {}\n", m.name,
             format_bytes(m.image_bytes()), format_seconds(m.total_ms / 1000.0),
             format_seconds(m.dump_ms / 1000.0),
             req.options.leave_running() ? "left running" : "stopped");
  if (a.print_stats) print_json(podman_dump_stats(m));
}

struct RestoreArgs {
  std::string vm, checkpoint, name, import_file, rootfs;
  bool print_stats = false;
  bool force = false;
  CriuFlags flags;
};

void restore(Context& ctx, const RestoreArgs& a) {
  if (a.checkpoint.empty() == a.import_file.empty()) {
    throw Error("restore needs exactly one of a stored checkpoint and --import FILE",
                "kcr restore VM CHECKPOINT, or kcr restore VM --import FILE.tar.zst",
                ExitCode::usage);
  }
  engine::RestoreRequest req{a.vm, a.checkpoint, a.name, a.flags.to_proto(), a.force, a.rootfs};
  auto out = a.import_file.empty() ? engine::restore(ctx.engine(), req)
                                   : engine::import_and_restore(ctx.engine(), req, a.import_file);
  const auto& m = out.manifest;
  const auto& r = out.restore;
  if (ctx.json) return print_json(restore_json(m, r));
  fmt::print(
      "workload '{}' restored in VM '{}' from checkpoint '{}' (guest pid {}) in {} (CRIU restore "
      "{})\n",
      sanitize(r.workload.name()), a.vm, m.name, r.workload.pid(),
      format_seconds(r.total_ms / 1000.0), format_seconds(r.restore_ms / 1000.0));
  if (a.print_stats) print_json(podman_restore_stats(r));
}

void list_checkpoints(Context& ctx) {
  ctx.engine().clean_store();
  core::CheckpointStore store(ctx.config().data_dir);
  auto all = store.list();
  if (ctx.json) {
    auto arr = core::Json::array();
    for (const auto& m : all) arr.push(manifest_json(m, store));
    return print_json(arr);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& m : all) {
    rows.push_back(
        {m.name, m.vm, m.workload, format_bytes(m.image_bytes()), m.criu_version, m.created});
  }
  print_table({"NAME", "VM", "WORKLOAD", "SIZE", "CRIU", "CREATED"}, rows);
}

void show(Context& ctx, const std::string& name) {
  core::CheckpointStore store(ctx.config().data_dir);
  auto m = store.load(name);
  if (ctx.json) return print_json(manifest_json(m, store));
  fmt::print("name:        {}\n", m.name);
  fmt::print("created:     {}\n", m.created);
  fmt::print("directory:   {}\n", store.dir(m.name));
  fmt::print("source:      workload '{}' (pid {}) in VM '{}'\n", m.workload, m.pid, m.vm);
  std::string argv;
  for (const auto& s : m.argv) argv += (argv.empty() ? "" : " ") + s;
  fmt::print("command:     {}\n", sanitize(argv));
  fmt::print("guest:       kernel {}, CRIU {}, image {} ({})\n", m.kernel_release, m.criu_version,
             m.image, m.image_hash.substr(0, 12));
  fmt::print("kcr:         {} (format {})\n", m.kcr_version, m.format_version);
  fmt::print("size:        {} of CRIU images in {} files\n", format_bytes(m.image_bytes()),
             m.files.size());
  fmt::print("timings:     checkpoint {}, CRIU dump {}\n", format_seconds(m.total_ms / 1000.0),
             format_seconds(m.dump_ms / 1000.0));
  if (m.stats) {
    fmt::print(
        "CRIU stats:  frozen {} us, memdump {} us, memwrite {} us, pages scanned {}, written {}\n",
        m.stats->frozen_time, m.stats->memdump_time, m.stats->memwrite_time, m.stats->pages_scanned,
        m.stats->pages_written);
  }
  for (const auto& r : m.pre_dumps) {
    fmt::print("pre-dump {}:  {} pages, {} of images, CRIU {} (parents/{}/)\n", r.round,
               r.pages_written, format_bytes(r.bytes), format_seconds(r.dump_ms / 1000.0), r.round);
  }
  fmt::print("options:     {}\n", CriuFlags::describe(m.options));
}

// A stored checkpoint when the store has one of that name, else an archive file.
void verify(Context& ctx, const std::string& name) {
  core::CheckpointStore store(ctx.config().data_dir);
  if (!core::is_valid_name(name) || !store.exists(name)) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(name, ec)) {
      throw Error("no checkpoint or archive named '" + name + "'",
                  "kcr checkpoints ls lists the checkpoints in " + store.root());
    }
    auto m = core::verify_archive(name, [&](uint64_t done, uint64_t total) {
      progress(ctx, engine::archive_progress_line("verifying " + name, done, total));
    });
    if (ctx.json) {
      auto j = core::Json::object();
      j.set("archive", name);
      j.set("name", m.name);
      j.set("ok", true);
      j.set("files", m.files.size());
      return print_json(j);
    }
    return fmt::print(
        "archive {} is complete: checkpoint '{}', {} files match their sha256 digests\n", name,
        m.name, m.files.size());
  }
  auto m = store.load(name);
  store.verify(m);
  if (ctx.json) {
    auto j = core::Json::object();
    j.set("name", name);
    j.set("ok", true);
    j.set("files", m.files.size());
    return print_json(j);
  }
  fmt::print("checkpoint '{}' is complete: {} files match their sha256 digests\n", name,
             m.files.size());
}

struct ExportArgs {
  std::string name, file, compress;
};

void export_archive(Context& ctx, const ExportArgs& a) {
  core::CheckpointStore store(ctx.config().data_dir);
  std::string what = "exporting '" + a.name + "'";
  auto out =
      core::export_checkpoint(store, a.name, a.file, compression_for(a.file, a.compress),
                              [&](uint64_t done, uint64_t total) {
                                progress(ctx, engine::archive_progress_line(what, done, total));
                              });
  if (ctx.json) {
    auto j = archive_json(out);
    j.set("name", a.name);
    return print_json(j);
  }
  print_exported(a.name, out);
}

struct ImportArgs {
  std::string file, name;
};

void import_archive(Context& ctx, const ImportArgs& a) {
  core::CheckpointStore store(ctx.config().data_dir);
  core::ImportOptions options;
  options.name = a.name;
  auto m = core::import_checkpoint(store, a.file, options, [&](uint64_t done, uint64_t total) {
    progress(ctx, engine::archive_progress_line("importing " + a.file, done, total));
  });
  if (ctx.json) return print_json(manifest_json(m, store));
  fmt::print(
      "checkpoint '{}' imported from {}: {} files, {} of CRIU images, every digest matched\n",
      m.name, a.file, m.files.size(), format_bytes(m.image_bytes()));
}

// kcr checkpoints ls|show|verify|rm|export|import.
void register_checkpoints_group(CLI::App& app, Context& ctx) {
  auto* cps = app.add_subcommand(
      "checkpoints",
      "List, show, inspect, diff, verify, export, import and remove stored checkpoints");
  cps->require_subcommand(1);
  auto* ls = cps->add_subcommand("ls", "List checkpoints");
  add_json_flag(ls, ctx);
  ls->footer("Example:\n  kcr checkpoints ls --json");
  ls->callback([&ctx] { list_checkpoints(ctx); });
  auto show_name = std::make_shared<std::string>();
  auto* sh = cps->add_subcommand("show", "Show one checkpoint's manifest");
  sh->add_option("name", *show_name, "Checkpoint")->required();
  add_json_flag(sh, ctx);
  sh->footer("Example:\n  kcr checkpoints show counter-1");
  sh->callback([&ctx, show_name] { show(ctx, *show_name); });
  auto verify_name = std::make_shared<std::string>();
  auto* v = cps->add_subcommand(
      "verify", "Re-check every file of a checkpoint, or of an archive, against its digest");
  v->add_option("name", *verify_name, "Checkpoint, or archive file (checked without importing)")
      ->required();
  add_json_flag(v, ctx);
  v->footer(
      "Exits 1 naming the first damaged file.\nExample:\n  kcr checkpoints verify counter-1\n"
      "  kcr checkpoints verify counter.tar.zst");
  v->callback([&ctx, verify_name] { verify(ctx, *verify_name); });
  auto ea = std::make_shared<ExportArgs>();
  auto* ex = cps->add_subcommand("export", "Write a checkpoint to one archive, like podman's");
  ex->add_option("name", ea->name, "Checkpoint")->required();
  ex->add_option("-o,--output", ea->file, "Archive file (.tar.zst, .tar.gz or .tar)")->required();
  ex->add_option("--compress", ea->compress, "zstd (default), gzip or none (default: by suffix)")
      ->check(CLI::IsMember({"zstd", "gzip", "none"}));
  add_json_flag(ex, ctx);
  ex->footer(
      "The archive holds checkpoint/ (CRIU's images), config.dump (the manifest, YAML),\n"
      "spec.dump (the workload, JSON), dump.log, stats-dump and parents/K/ (pre-dumps).\n"
      "Example:\n  kcr checkpoints export counter-1 -o counter-1.tar.zst");
  ex->callback([&ctx, ea] { export_archive(ctx, *ea); });
  auto ia = std::make_shared<ImportArgs>();
  auto* im = cps->add_subcommand("import", "Store a checkpoint from an archive");
  im->add_option("file", ia->file, "Archive (kcr checkpoints export)")->required();
  im->add_option("--name", ia->name, "Checkpoint name in the store (default: the archive's)");
  add_json_flag(im, ctx);
  im->footer(
      "Every entry is checked against the archive's manifest (size, sha256, no links or\n"
      "devices); anything else is refused and nothing is stored.\n"
      "Example:\n  kcr checkpoints import counter-1.tar.zst --name counter-copy");
  im->callback([&ctx, ia] { import_archive(ctx, *ia); });
  auto rm_names = std::make_shared<std::vector<std::string>>();
  auto* rm = cps->add_subcommand("rm", "Remove checkpoints");
  rm->add_option("names", *rm_names, "Checkpoints")->required();
  rm->footer("Example:\n  kcr checkpoints rm counter-1 counter-2");
  rm->callback([&ctx, rm_names] {
    core::CheckpointStore store(ctx.config().data_dir);
    for (const auto& n : *rm_names) {
      store.remove(n);
      if (!ctx.quiet) fmt::print("checkpoint '{}' removed\n", n);
    }
  });
  register_inspect_commands(cps, ctx);
  cps->footer(
      "Example:\n  kcr checkpoints ls\n  kcr checkpoints show counter-1\n"
      "  kcr checkpoints inspect counter-1 --ps-tree");
}

}  // namespace

void register_checkpoint_commands(CLI::App& app, Context& ctx) {
  auto ca = std::make_shared<CheckpointArgs>();
  auto* c = app.add_subcommand(
      "checkpoint", "Checkpoint a workload with CRIU in its VM and store it on the host");
  c->add_option("vm", ca->vm, "VM")->required();
  c->add_option("workload", ca->workload, "Workload to checkpoint")->required();
  c->add_option("-o,--name", ca->name, "Checkpoint name (default WORKLOAD-TIMESTAMP)");
  ca->flags.add_to(c, CriuFlags::Use::dump);
  c->add_flag("--print-stats", ca->print_stats,
              "Print CRIU's statistics as JSON, in podman's names");
  c->add_option("--export", ca->export_file,
                "Also export the checkpoint to this archive (.tar.zst, .tar.gz or .tar)");
  c->add_option("--compress", ca->compress, "Archive compression for --export (default: zstd)")
      ->check(CLI::IsMember({"zstd", "gzip", "none"}));
  c->add_flag("--transfer-after-dump", ca->transfer_after_dump,
              "Send the images only once CRIU finished (slower; scripts/bench times CRIU alone)");
  add_json_flag(c, ctx);
  c->footer(
      "Without --leave-running the workload is gone once the checkpoint is stored; if anything\n"
      "fails before that, it keeps running and nothing is stored.\n"
      "Example:\n  kcr checkpoint demo counter -o counter-1 --leave-running\n"
      "  kcr checkpoint demo counter --export counter.tar.zst");
  c->callback([&ctx, ca] { checkpoint(ctx, *ca); });

  auto ra = std::make_shared<RestoreArgs>();
  auto* r = app.add_subcommand("restore", "Restore a stored checkpoint into a VM");
  r->add_option("vm", ra->vm, "VM to restore into")->required();
  r->add_option("checkpoint", ra->checkpoint, "Checkpoint name (kcr checkpoints ls)");
  r->add_option("--import", ra->import_file,
                "Import this archive (kcr checkpoints export) and restore it");
  r->add_option("--name", ra->name, "Workload name after restore (default: the checkpointed name)");
  r->add_option("--rootfs", ra->rootfs,
                "The root filesystem the workload ran on (kcr run --rootfs), when this host has "
                "not kept its base (an imported checkpoint); refused unless it is the same");
  ra->flags.add_to(r, CriuFlags::Use::restore);
  r->add_flag("--force", ra->force,
              "Restore even if the VM's kernel or CRIU differs from the checkpoint's");
  r->add_flag("--print-stats", ra->print_stats,
              "Print CRIU's statistics as JSON, in podman's names");
  add_json_flag(r, ctx);
  r->footer(
      "Every file's digest is checked before anything is sent; a failed restore leaves the\n"
      "checkpoint untouched. Options the checkpoint was made with apply again.\n"
      "Example:\n  kcr restore demo counter-1 --name counter2\n"
      "  kcr restore demo --import counter.tar.zst");
  r->callback([&ctx, ra] { restore(ctx, *ra); });

  register_checkpoints_group(app, ctx);
}

}  // namespace kcr::cli
