#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace kcr::images {

// The file tree of an initramfs, kept sorted by path so that writing it is deterministic.
// Paths are absolute ("/usr/bin/busybox"); parents are created as directories on demand,
// and a parent that is a symlink in the tree (e.g. /lib -> usr/lib) is followed.
class InitramfsTree {
 public:
  enum class Type { dir, file, symlink, char_device };
  struct Entry {
    Type type = Type::dir;
    unsigned mode = 0755;
    std::string data;    // file contents, or the symlink target
    unsigned major = 0;  // char devices only
    unsigned minor = 0;
  };

  InitramfsTree();

  // Each returns the path actually used after following symlinked parents.
  std::string add_dir(const std::string& path, unsigned mode = 0755);
  std::string add_file(const std::string& path, std::string data, unsigned mode);
  std::string add_symlink(const std::string& path, const std::string& target);
  std::string add_char_device(const std::string& path, unsigned major, unsigned minor,
                              unsigned mode);

  // Copies the host file HOST_PATH to the same path in the tree, reproducing every symlink
  // met on the way (merged-/usr: /lib -> usr/lib, /lib64/ld-linux... -> /lib/...), so the
  // path resolves in the guest as it does on the host. Returns the host's real path.
  std::string add_host_path(const std::string& host_path);

  const std::map<std::string, Entry>& entries() const { return m_entries; }
  bool contains(const std::string& path) const { return m_entries.count(path) != 0; }
  uint64_t file_bytes() const;  // sum of regular file sizes

 private:
  std::string resolve_parent(const std::string& path);
  std::string put(const std::string& path, Entry entry);

  std::map<std::string, Entry> m_entries;
};

// Writes TREE as an uncompressed cpio "newc" archive to OUT_PATH: entries sorted, mtime 0,
// owner 0:0, so the same tree always gives the same bytes. Replaces OUT_PATH atomically
// (core::write_file_atomic). Throws kcr::Error on failure.
void write_cpio(const InitramfsTree& tree, const std::string& out_path);

}  // namespace kcr::images
