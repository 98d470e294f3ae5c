#include "images/initramfs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"

namespace kcr::images {

namespace {

std::vector<std::string> split_components(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start < path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  return parts;
}

std::string join(const std::string& dir, const std::string& target) {
  if (!target.empty() && target[0] == '/') return target;
  return dir == "/" ? "/" + target : dir + "/" + target;
}

// libarchive's write callback: the archive grows in a string that is then written atomically.
la_ssize_t append_to_string(archive*, void* out, const void* buf, size_t len) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

}  // namespace

InitramfsTree::InitramfsTree() {
  m_entries["/"] = Entry{Type::dir, 0755, {}, 0, 0};
}

std::string InitramfsTree::resolve_parent(const std::string& path) {
  auto parts = split_components(path);
  if (parts.empty()) return "/";
  std::string name = parts.back();
  parts.pop_back();
  std::string current = "/";
  for (std::size_t i = 0, hops = 0; i < parts.size(); ++i) {
    std::string next = join(current, parts[i]);
    auto it = m_entries.find(next);
    if (it == m_entries.end()) {
      m_entries[next] = Entry{Type::dir, 0755, {}, 0, 0};
      current = next;
    } else if (it->second.type == Type::dir) {
      current = next;
    } else if (it->second.type == Type::symlink) {
      if (++hops > 40) throw Error("initramfs: too many symlinks resolving " + path);
      // Restart from the symlink's target followed by the remaining components.
      auto target = split_components(join(current, it->second.data));
      std::vector<std::string> rest(target);
      rest.insert(rest.end(), parts.begin() + static_cast<std::ptrdiff_t>(i) + 1, parts.end());
      parts = rest;
      current = "/";
      i = static_cast<std::size_t>(-1);
    } else {
      throw Error("initramfs: " + next + " is not a directory (adding " + path + ")");
    }
  }
  return join(current, name);
}

std::string InitramfsTree::put(const std::string& path, Entry entry) {
  std::string resolved = resolve_parent(path);
  if (resolved == "/") return resolved;
  auto it = m_entries.find(resolved);
  if (it != m_entries.end()) {
    if (it->second.type == Type::dir && entry.type == Type::dir) return resolved;
    if (it->second.type != entry.type) {
      throw Error("initramfs: conflicting entries for " + resolved);
    }
  }
  m_entries[resolved] = std::move(entry);
  return resolved;
}

std::string InitramfsTree::add_dir(const std::string& path, unsigned mode) {
  return put(path, Entry{Type::dir, mode, {}, 0, 0});
}

std::string InitramfsTree::add_file(const std::string& path, std::string data, unsigned mode) {
  return put(path, Entry{Type::file, mode, std::move(data), 0, 0});
}

std::string InitramfsTree::add_symlink(const std::string& path, const std::string& target) {
  return put(path, Entry{Type::symlink, 0777, target, 0, 0});
}

std::string InitramfsTree::add_char_device(const std::string& path, unsigned major, unsigned minor,
                                           unsigned mode) {
  return put(path, Entry{Type::char_device, mode, {}, major, minor});
}

std::string InitramfsTree::add_host_path(const std::string& host_path) {
  auto parts = split_components(host_path);
  std::string current = "/";
  for (std::size_t i = 0, hops = 0; i < parts.size(); ++i) {
    std::string next = join(current, parts[i]);
    struct stat st {};
    if (::lstat(next.c_str(), &st) != 0) throw_errno("cannot stat " + next);
    if (S_ISLNK(st.st_mode)) {
      if (++hops > 40) throw Error("too many symlinks resolving " + host_path);
      char buf[PATH_MAX];
      ssize_t n = ::readlink(next.c_str(), buf, sizeof buf - 1);
      if (n < 0) throw_errno("cannot read symlink " + next);
      std::string target(buf, static_cast<std::size_t>(n));
      add_symlink(next, target);
      auto rest = split_components(join(current, target));
      rest.insert(rest.end(), parts.begin() + static_cast<std::ptrdiff_t>(i) + 1, parts.end());
      parts = rest;
      current = "/";
      i = static_cast<std::size_t>(-1);
    } else if (S_ISDIR(st.st_mode)) {
      if (i + 1 == parts.size()) throw Error(host_path + " is a directory, not a file");
      add_dir(next, 0755);
      current = next;
    } else if (S_ISREG(st.st_mode)) {
      if (i + 1 != parts.size()) throw Error(next + " is not a directory");
      add_file(next, core::read_file(next), st.st_mode & 07777);
      return next;
    } else {
      throw Error(next + " is not a regular file");
    }
  }
  throw Error("cannot add " + host_path + " to the initramfs");
}

uint64_t InitramfsTree::file_bytes() const {
  uint64_t total = 0;
  for (const auto& [path, e] : m_entries) {
    if (e.type == Type::file) total += e.data.size();
  }
  return total;
}

void write_cpio(const InitramfsTree& tree, const std::string& out_path) {
  std::string cpio;
  std::unique_ptr<archive, decltype(&archive_write_free)> out(archive_write_new(),
                                                              archive_write_free);
  auto check = [&](int r, const std::string& what) {
    if (r != ARCHIVE_OK) {
      throw Error("cannot write initramfs " + out_path + ": " + what + ": " +
                  archive_error_string(out.get()));
    }
  };
  check(archive_write_set_format_cpio_newc(out.get()), "format");
  check(archive_write_add_filter_none(out.get()), "filter");
  check(archive_write_set_bytes_in_last_block(out.get(), 1), "block size");
  check(archive_write_open(out.get(), &cpio, nullptr, append_to_string, nullptr), "open");

  std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                      archive_entry_free);
  int64_t inode = 0;
  for (const auto& [path, e] : tree.entries()) {
    if (path == "/") continue;
    archive_entry_clear(entry.get());
    archive_entry_set_pathname(entry.get(), path.c_str() + 1);
    archive_entry_set_mtime(entry.get(), 0, 0);
    archive_entry_set_uid(entry.get(), 0);
    archive_entry_set_gid(entry.get(), 0);
    archive_entry_set_ino64(entry.get(), ++inode);
    archive_entry_set_nlink(entry.get(), e.type == InitramfsTree::Type::dir ? 2 : 1);
    archive_entry_set_perm(entry.get(), e.mode & 07777);
    archive_entry_set_size(entry.get(), 0);
    switch (e.type) {
      case InitramfsTree::Type::dir:
        archive_entry_set_filetype(entry.get(), AE_IFDIR);
        break;
      case InitramfsTree::Type::file:
        archive_entry_set_filetype(entry.get(), AE_IFREG);
        archive_entry_set_size(entry.get(), static_cast<la_int64_t>(e.data.size()));
        break;
      case InitramfsTree::Type::symlink:
        archive_entry_set_filetype(entry.get(), AE_IFLNK);
        archive_entry_set_symlink(entry.get(), e.data.c_str());
        break;
      case InitramfsTree::Type::char_device:
        archive_entry_set_filetype(entry.get(), AE_IFCHR);
        archive_entry_set_rdevmajor(entry.get(), e.major);
        archive_entry_set_rdevminor(entry.get(), e.minor);
        break;
    }
    check(archive_write_header(out.get(), entry.get()), path);
    if (e.type == InitramfsTree::Type::file && !e.data.empty()) {
      la_ssize_t n = archive_write_data(out.get(), e.data.data(), e.data.size());
      if (n < 0 || static_cast<std::size_t>(n) != e.data.size()) check(ARCHIVE_FATAL, path);
    }
  }
  check(archive_write_close(out.get()), "close");
  core::write_file_atomic(out_path, cpio, 0644);
}

}  // namespace kcr::images
