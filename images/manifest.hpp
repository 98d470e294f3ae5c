#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "images/image.hpp"

namespace kcr::images {

// Bumped when the image layout or the manifest changes incompatibly; part of content_hash.
inline constexpr int k_image_format_version = 1;

// {dir}/manifest.yaml: written last, so an image without it is incomplete.
struct ImageManifest {
  struct File {
    std::string path;  // in the guest
    uint64_t size = 0;
  };
  int format_version = k_image_format_version;
  ImageInfo image;                   // dir/kernel/initrd are stored relative, resolved on read
  std::vector<std::string> modules;  // load order
  std::vector<File> files;
};

// Serialises MANIFEST as YAML; kernel and initrd are stored as names relative to the image dir.
std::string manifest_to_yaml(const ImageManifest& manifest);

// Parses a manifest written by manifest_to_yaml for the image in DIR; throws kcr::Error
// naming SOURCE when it is malformed or of another format version.
ImageManifest manifest_from_yaml(const std::string& text, const std::string& dir,
                                 const std::string& source);

}  // namespace kcr::images
