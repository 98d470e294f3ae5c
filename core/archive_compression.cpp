// The compression of a checkpoint archive by name and by file suffix
// (declared in checkpoint_archive.hpp).
#include "core/checkpoint_archive.hpp"
#include "core/error.hpp"

namespace kcr::core {

Compression compression_named(const std::string& name) {
  if (name == "zstd") return Compression::zstd;
  if (name == "gzip") return Compression::gzip;
  if (name == "none") return Compression::none;
  throw Error("unknown compression '" + name + "'", "use zstd, gzip or none", ExitCode::usage);
}

std::string compression_name(Compression c) {
  switch (c) {
    case Compression::zstd:
      return "zstd";
    case Compression::gzip:
      return "gzip";
    case Compression::none:
      return "none";
  }
  return "none";
}

std::optional<Compression> compression_for_path(const std::string& file) {
  auto ends = [&](const std::string& s) {
    return file.size() > s.size() && file.compare(file.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".tar.zst") || ends(".tar.zstd")) return Compression::zstd;
  if (ends(".tar.gz") || ends(".tgz")) return Compression::gzip;
  if (ends(".tar")) return Compression::none;
  return std::nullopt;
}

}  // namespace kcr::core
