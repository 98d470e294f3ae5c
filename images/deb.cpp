#include "images/deb.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <memory>

#include "core/error.hpp"

namespace kcr::images {

namespace {

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReader = std::unique_ptr<archive, ArchiveReadDeleter>;

// Feeds the inner tar reader straight from the current member of the outer ar reader,
// so the (large) data.tar is never held in memory as a whole.
struct MemberSource {
  archive* outer;
  char buffer[1 << 16];
};

la_ssize_t read_member(archive* inner, void* client, const void** out) {
  auto* src = static_cast<MemberSource*>(client);
  la_ssize_t n = archive_read_data(src->outer, src->buffer, sizeof src->buffer);
  if (n < 0) {
    archive_set_error(inner, archive_errno(src->outer), "%s", archive_error_string(src->outer));
    return -1;
  }
  *out = src->buffer;
  return n;
}

void read_data_tar(archive* outer, const std::string& deb_path,
                   const std::function<bool(std::string_view)>& want,
                   const std::function<void(DebFile&&)>& on_file) {
  ArchiveReader inner(archive_read_new());
  archive_read_support_filter_all(inner.get());
  archive_read_support_format_tar(inner.get());
  MemberSource source{outer, {}};
  if (archive_read_open(inner.get(), &source, nullptr, read_member, nullptr) != ARCHIVE_OK) {
    throw Error(deb_path + ": cannot read data archive: " + archive_error_string(inner.get()));
  }
  archive_entry* entry = nullptr;
  for (;;) {
    int r = archive_read_next_header(inner.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      throw Error(deb_path + ": corrupt data archive: " + archive_error_string(inner.get()));
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    std::string_view path = archive_entry_pathname(entry);
    while (path.starts_with("./")) path.remove_prefix(2);
    while (path.starts_with("/")) path.remove_prefix(1);
    if (!want(path)) continue;
    DebFile file;
    file.path = std::string(path);
    file.mode = archive_entry_perm(entry);
    if (archive_entry_size_is_set(entry)) {
      file.data.reserve(static_cast<std::size_t>(archive_entry_size(entry)));
    }
    char buf[1 << 16];
    for (;;) {
      la_ssize_t n = archive_read_data(inner.get(), buf, sizeof buf);
      if (n < 0) {
        throw Error(deb_path + ": cannot read " + file.path + ": " +
                    archive_error_string(inner.get()));
      }
      if (n == 0) break;
      file.data.append(buf, static_cast<std::size_t>(n));
    }
    on_file(std::move(file));
  }
}

}  // namespace

void read_deb_data(const std::string& deb_path,
                   const std::function<bool(std::string_view path)>& want,
                   const std::function<void(DebFile&&)>& on_file) {
  ArchiveReader outer(archive_read_new());
  archive_read_support_format_ar(outer.get());
  if (archive_read_open_filename(outer.get(), deb_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    throw Error("cannot open kernel package " + deb_path + ": " +
                archive_error_string(outer.get()));
  }
  archive_entry* entry = nullptr;
  for (;;) {
    int r = archive_read_next_header(outer.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
      throw Error(deb_path + ": not a Debian package: " + archive_error_string(outer.get()));
    }
    std::string_view name = archive_entry_pathname(entry);
    if (name.starts_with("data.tar")) {
      read_data_tar(outer.get(), deb_path, want, on_file);
      return;
    }
  }
  throw Error(deb_path + ": not a Debian package (no data.tar member)");
}

}  // namespace kcr::images
