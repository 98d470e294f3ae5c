#include "images/manifest.hpp"

#include <yaml-cpp/yaml.h>

#include "core/error.hpp"

namespace kcr::images {

namespace {

std::string base_name(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string manifest_to_yaml(const ImageManifest& m) {
  const ImageInfo& i = m.image;
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format_version" << YAML::Value << m.format_version;
  out << YAML::Key << "name" << YAML::Value << i.name;
  out << YAML::Key << "kernel" << YAML::Value << base_name(i.kernel);
  out << YAML::Key << "initrd" << YAML::Value << base_name(i.initrd);
  out << YAML::Key << "kernel_release" << YAML::Value << i.kernel_release;
  out << YAML::Key << "kernel_package" << YAML::Value << i.kernel_package;
  out << YAML::Key << "kernel_flavor" << YAML::Value << to_string(i.kernel_flavor);
  out << YAML::Key << "criu_version" << YAML::Value << i.criu_version;
  out << YAML::Key << "agent_version" << YAML::Value << i.agent_version;
  out << YAML::Key << "content_hash" << YAML::Value << i.content_hash;
  out << YAML::Key << "created" << YAML::Value << i.created;
  out << YAML::Key << "initrd_bytes" << YAML::Value << i.initrd_bytes;
  out << YAML::Key << "kernel_bytes" << YAML::Value << i.kernel_bytes;
  out << YAML::Key << "modules" << YAML::Value << YAML::BeginSeq;
  for (const auto& mod : m.modules) out << mod;
  out << YAML::EndSeq;
  out << YAML::Key << "files" << YAML::Value << YAML::BeginSeq;
  for (const auto& f : m.files) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "path" << YAML::Value << f.path << YAML::Key
        << "size" << YAML::Value << f.size << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

ImageManifest manifest_from_yaml(const std::string& text, const std::string& dir,
                                 const std::string& source) {
  ImageManifest m;
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) throw Error(source + ": not a guest image manifest");
    m.format_version = root["format_version"].as<int>();
    if (m.format_version != k_image_format_version) {
      throw Error(source + ": guest image format " + std::to_string(m.format_version) +
                      " is not supported (expected " + std::to_string(k_image_format_version) + ")",
                  "rebuild it with 'kcr image build --force'");
    }
    ImageInfo& i = m.image;
    i.name = root["name"].as<std::string>();
    i.dir = dir;
    i.kernel = dir + "/" + root["kernel"].as<std::string>();
    i.initrd = dir + "/" + root["initrd"].as<std::string>();
    i.kernel_release = root["kernel_release"].as<std::string>();
    i.kernel_package = root["kernel_package"].as<std::string>();
    // Images written before source kernels existed have Debian's.
    std::string flavor = root["kernel_flavor"] ? root["kernel_flavor"].as<std::string>() : "";
    i.kernel_flavor = flavor == "source"   ? KernelFlavor::source
                      : flavor == "custom" ? KernelFlavor::custom
                                           : KernelFlavor::debian;
    i.criu_version = root["criu_version"].as<std::string>();
    i.agent_version = root["agent_version"].as<std::string>();
    i.content_hash = root["content_hash"].as<std::string>();
    i.created = root["created"].as<std::string>();
    i.initrd_bytes = root["initrd_bytes"].as<uint64_t>();
    i.kernel_bytes = root["kernel_bytes"].as<uint64_t>();
    for (const auto& mod : root["modules"]) m.modules.push_back(mod.as<std::string>());
    for (const auto& f : root["files"]) {
      m.files.push_back({f["path"].as<std::string>(), f["size"].as<uint64_t>()});
    }
  } catch (const YAML::Exception& e) {
    throw Error(source + ": malformed guest image manifest: " + e.what(),
                "rebuild it with 'kcr image build --force'");
  }
  return m;
}

}  // namespace kcr::images
