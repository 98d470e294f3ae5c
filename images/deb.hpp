#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace kcr::images {

// One regular file taken out of a .deb's data archive.
struct DebFile {
  std::string path;  // relative, without a leading "./": "boot/vmlinuz-6.1.0-56-cloud-amd64"
  std::string data;
  unsigned mode = 0644;
};

// Streams the data.tar.{xz,zst,gz,bz2} member of the Debian package DEB_PATH with
// libarchive and calls ON_FILE for each regular file whose path WANT accepts. Throws
// kcr::Error when the file is not a readable .deb.
void read_deb_data(const std::string& deb_path,
                   const std::function<bool(std::string_view path)>& want,
                   const std::function<void(DebFile&&)>& on_file);

}  // namespace kcr::images
