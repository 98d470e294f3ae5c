#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>

#include "cli/context.hpp"
#include "core/error.hpp"
#include "images/image.hpp"

namespace kcr::cli {

namespace {

// The kcr-agent binary to put into images: $KCR_AGENT, or next to kcr in the
// build tree or an installation.
std::string default_agent_path() {
  if (const char* env = std::getenv("KCR_AGENT"); env && *env) return env;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = exe.parent_path();
    for (const auto& candidate : {dir / "kcr-agent", dir / ".." / "images" / "agent" / "kcr-agent",
                                  dir / ".." / "libexec" / "kcr" / "kcr-agent"}) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.lexically_normal().string();
    }
  }
  throw Error("the kcr-agent binary was not found next to kcr",
              "pass --agent PATH or set KCR_AGENT; scripts/setup.sh builds it");
}

core::Json image_json(const images::ImageInfo& i) {
  auto j = core::Json::object();
  j.set("name", i.name);
  j.set("kernel_release", i.kernel_release);
  j.set("kernel_package", i.kernel_package);
  j.set("criu_version", i.criu_version);
  j.set("agent_version", i.agent_version);
  j.set("content_hash", i.content_hash);
  j.set("created", i.created);
  j.set("kernel", i.kernel);
  j.set("initrd", i.initrd);
  j.set("kernel_bytes", i.kernel_bytes);
  j.set("initrd_bytes", i.initrd_bytes);
  return j;
}

struct BuildArgs {
  std::string name = "default";
  std::string agent;
  std::string kernel_deb;
  bool force = false;
};

void build(Context& ctx, const BuildArgs& a) {
  images::BuildOptions o;
  o.name = a.name;
  o.agent_path = a.agent.empty() ? default_agent_path() : a.agent;
  o.kernel_deb = a.kernel_deb;
  o.force = a.force;
  auto result =
      images::build_image(ctx.config(), o, [&](const std::string& l) { progress(ctx, l); });
  if (ctx.json) {
    auto j = image_json(result.image);
    j.set("rebuilt", result.rebuilt);
    return print_json(j);
  }
  const auto& i = result.image;
  fmt::print("guest image '{}' {}: kernel {}, CRIU {}, initramfs {}, hash {}\n", i.name,
             result.rebuilt ? "built" : "is up to date", i.kernel_release, i.criu_version,
             format_bytes(i.initrd_bytes), i.content_hash.substr(0, 12));
}

void list(Context& ctx) {
  auto all = images::list_images(ctx.config());
  if (ctx.json) {
    auto arr = core::Json::array();
    for (const auto& i : all) arr.push(image_json(i));
    return print_json(arr);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& i : all) {
    rows.push_back({i.name, i.kernel_release, i.criu_version,
                    format_bytes(i.kernel_bytes + i.initrd_bytes), i.content_hash.substr(0, 12),
                    i.created});
  }
  print_table({"NAME", "KERNEL", "CRIU", "SIZE", "HASH", "CREATED"}, rows);
}

}  // namespace

void register_image_commands(CLI::App& app, Context& ctx) {
  auto* img = app.add_subcommand("image", "Build and list guest images (kernel + initramfs)");
  img->require_subcommand(1);

  auto ba = std::make_shared<BuildArgs>();
  auto* b = img->add_subcommand(
      "build", "Build a guest image from Debian's cloud kernel, CRIU and kcr-agent");
  b->add_option("--name", ba->name, "Image name (default 'default')");
  b->add_option("--agent", ba->agent,
                "kcr-agent binary to include (default: the one built with kcr)");
  b->add_option("--kernel-deb", ba->kernel_deb,
                "Use this linux-image .deb instead of apt-get download");
  b->add_flag("--force", ba->force, "Rebuild even when the inputs are unchanged");
  add_json_flag(b, ctx);
  b->footer("Building again with unchanged inputs does nothing.\nExample:\n  kcr image build");
  b->callback([&ctx, ba] { build(ctx, *ba); });

  auto* l = img->add_subcommand("ls", "List guest images");
  add_json_flag(l, ctx);
  l->footer("Example:\n  kcr image ls");
  l->callback([&ctx] { list(ctx); });

  auto rm_name = std::make_shared<std::string>();
  auto* r = img->add_subcommand("rm", "Remove a guest image");
  r->add_option("name", *rm_name, "Image")->required();
  r->footer("Example:\n  kcr image rm old");
  r->callback([&ctx, rm_name] {
    images::remove_image(ctx.config(), *rm_name);
    if (!ctx.quiet) fmt::print("guest image '{}' removed\n", *rm_name);
  });
}

}  // namespace kcr::cli
