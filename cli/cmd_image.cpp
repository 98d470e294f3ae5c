#include <fmt/core.h>
#include <unistd.h>

#include <filesystem>

#include "cli/context.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "images/image.hpp"
#include "images/kernel_build.hpp"
#include "images/kernel_config.hpp"

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
  j.set("kernel_flavor", images::to_string(i.kernel_flavor));
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
  std::string criu;
  std::string kernel_image, kernel_config, kernel_modules;
  std::string kernel = "auto";
  bool force = false;
};

void build(Context& ctx, const BuildArgs& a) {
  images::BuildOptions o;
  o.name = a.name;
  o.agent_path = a.agent.empty() ? default_agent_path() : a.agent;
  o.kernel_deb = a.kernel_deb;
  o.criu_path = a.criu;
  o.kernel_image = a.kernel_image;
  o.kernel_config = a.kernel_config;
  o.kernel_modules = a.kernel_modules;
  if (a.kernel == "debian") o.kernel = images::KernelFlavor::debian;
  if (a.kernel == "source") o.kernel = images::KernelFlavor::source;
  o.force = a.force;
  auto result =
      images::build_image(ctx.config(), o, [&](const std::string& l) { progress(ctx, l); });
  if (ctx.json) {
    auto j = image_json(result.image);
    j.set("rebuilt", result.rebuilt);
    return print_json(j);
  }
  const auto& i = result.image;
  fmt::print("guest image '{}' {}: kernel {} ({}), CRIU {}, initramfs {}, hash {}\n", i.name,
             result.rebuilt ? "built" : "is up to date", i.kernel_release,
             images::to_string(i.kernel_flavor), i.criu_version, format_bytes(i.initrd_bytes),
             i.content_hash.substr(0, 12));
}

void list_images(Context& ctx) {
  auto all = images::list_images(ctx.config());
  if (ctx.json) {
    auto arr = core::Json::array();
    for (const auto& i : all) arr.push(image_json(i));
    return print_json(arr);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& i : all) {
    rows.push_back({i.name, i.kernel_release, images::to_string(i.kernel_flavor), i.criu_version,
                    format_bytes(i.kernel_bytes + i.initrd_bytes), i.content_hash.substr(0, 12),
                    i.created});
  }
  print_table({"NAME", "KERNEL", "FLAVOR", "CRIU", "SIZE", "HASH", "CREATED"}, rows);
}

struct CheckKernelArgs {
  std::string config_file;
  std::string image;
  bool debian = false;
  bool source = false;
  std::string kernel_deb;
};

const char* need_name(images::Need need) {
  return need == images::Need::required ? "required" : "recommended";
}

void check_kernel(Context& ctx, const CheckKernelArgs& a) {
  int sources =
      !a.config_file.empty() + !a.image.empty() + a.source + (a.debian || !a.kernel_deb.empty());
  if (sources > 1) {
    throw Error("give one of CONFIG_FILE, --image, --source and --debian", {}, ExitCode::usage);
  }
  images::KernelConfigText config;
  if (a.source) {
    auto kernel = images::find_source_kernel(ctx.config());
    if (!kernel) {
      throw Error("no kernel built from source for this source package and fragment in " +
                      ctx.config().cache_dir + "/kernels",
                  "build it with 'kcr image build --kernel source' (~11 minutes on 2 cores)");
    }
    config = {"kernel " + kernel->release + " built from source (" + kernel->dir + ")",
              core::read_file(kernel->config)};
  } else if (!a.config_file.empty()) {
    config = {a.config_file, core::read_file(a.config_file)};
  } else if (a.debian || !a.kernel_deb.empty()) {
    config = images::debian_kernel_config(ctx.config(), a.kernel_deb,
                                          [&](const std::string& l) { progress(ctx, l); });
  } else {
    config =
        images::image_kernel_config(ctx.config(), a.image.empty() ? ctx.config().image : a.image);
  }
  auto check = images::check_kernel_config(images::parse_kernel_config(config.text, config.source),
                                           images::kcr_kernel_fragment());
  if (!check.ok()) ctx.exit_code = static_cast<int>(ExitCode::failure);
  if (ctx.json) {
    auto j = core::Json::object();
    j.set("source", config.source);
    j.set("ok", check.ok());
    auto options = core::Json::array();
    for (const auto& c : check.options) {
      auto o = core::Json::object();
      o.set("option", c.option.name);
      o.set("status", images::describe_status(c));
      o.set("present", c.present());
      o.set("need", need_name(c.option.need));
      o.set("needed_by", c.option.needed_by);
      options.push(o);
    }
    j.set("options", options);
    return print_json(j);
  }
  std::vector<std::vector<std::string>> rows;
  std::size_t required = 0, modules = 0, recommended_missing = 0;
  for (const auto& c : check.options) {
    rows.push_back(
        {c.option.name, images::describe_status(c), need_name(c.option.need), c.option.needed_by});
    bool is_required = c.option.need == images::Need::required;
    required += is_required;
    modules += is_required && c.status == images::OptionStatus::module;
    recommended_missing += !is_required && !c.present();
  }
  fmt::print("kernel config: {}\n\n", config.source);
  print_table({"OPTION", "STATUS", "NEED", "NEEDED BY"}, rows);
  fmt::print("\n");
  if (check.ok()) {
    fmt::print("all {} required options present ({})", required,
               modules ? fmt::format("{} as modules", modules) : std::string("all built in"));
  } else {
    fmt::print("MISSING {} of {} required options: {}", check.missing_required().size(), required,
               images::describe_missing(check));
  }
  fmt::print("; {} recommended missing\n", recommended_missing);
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
  b->add_option("--kernel", ba->kernel,
                "Kernel: 'source' (built from Debian's linux-source once, ~11 min on 2 cores), "
                "'debian' (the cloud kernel package) or 'auto' (source when built, else debian)")
      ->check(CLI::IsMember({"auto", "source", "debian"}));
  b->add_option("--kernel-deb", ba->kernel_deb,
                "Use this linux-image .deb instead of apt-get download");
  b->add_option("--kernel-image", ba->kernel_image,
                "A kernel you built (bzImage or vmlinux) instead of Debian's or kcr's own");
  b->add_option("--kernel-config", ba->kernel_config,
                "Its .config: checked like every kernel's, the build refused naming what is "
                "missing");
  b->add_option("--kernel-modules", ba->kernel_modules,
                "Where its modules were installed (make modules_install INSTALL_MOD_PATH=DIR); "
                "without it, what kcr needs must be built in");
  b->add_option("--criu", ba->criu,
                "A CRIU binary of your own (with its shared libraries) instead of the host's; "
                "kcr check and every checkpoint name its version");
  b->add_flag("--force", ba->force, "Rebuild even when the inputs are unchanged");
  add_json_flag(b, ctx);
  b->footer(
      "Building again with unchanged inputs does nothing.\nExamples:\n  kcr image build\n"
      "  kcr image build --name dev --criu ~/src/criu/criu/criu\n"
      "  kcr image build --name mine --kernel-image arch/x86/boot/bzImage --kernel-config "
      ".config");
  b->callback([&ctx, ba] { build(ctx, *ba); });

  auto ka = std::make_shared<CheckKernelArgs>();
  auto* k = img->add_subcommand(
      "check-kernel", "Report the kernel options CRIU and kcr need as built in, module or missing");
  k->add_option("config_file", ka->config_file, "A kernel .config file");
  k->add_option("--image", ka->image, "The kernel of this guest image (default: the config's)");
  k->add_flag("--source", ka->source,
              "The kernel built from source (fails when it is not built yet)");
  k->add_flag("--debian", ka->debian, "The config inside Debian's cloud kernel package");
  k->add_option("--kernel-deb", ka->kernel_deb, "The config inside this linux-image .deb");
  add_json_flag(k, ctx);
  k->footer(
      "Exits 1 when a required option is missing; 'kcr image build' refuses such a kernel.\n"
      "Examples:\n  kcr image check-kernel --debian\n  kcr image check-kernel "
      "/boot/config-$(uname -r)");
  k->callback([&ctx, ka] { check_kernel(ctx, *ka); });

  auto* l = img->add_subcommand("ls", "List guest images");
  add_json_flag(l, ctx);
  l->footer("Example:\n  kcr image ls");
  l->callback([&ctx] { list_images(ctx); });

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
