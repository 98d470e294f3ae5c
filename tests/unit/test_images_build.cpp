#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "images/deb.hpp"
#include "images/image.hpp"
#include "images/initramfs.hpp"
#include "images/manifest.hpp"
#include "images/modules.hpp"
#include "temp_dir.hpp"
#include "test_images_util.hpp"

namespace fs = std::filesystem;

namespace kcr::images {

namespace {

using kcr::test::TempDir;

struct ArchiveMember {
  std::string name;
  std::string data;
  unsigned type = AE_IFREG;
};

// Writes MEMBERS into memory as an archive whose format SET_FORMAT selects.
std::string make_archive(int (*set_format)(archive*), bool gzip,
                         const std::vector<ArchiveMember>& members) {
  archive* a = archive_write_new();
  set_format(a);
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_bytes_in_last_block(a, 1);
  std::vector<char> buf(1 << 20);
  size_t used = 0;
  EXPECT_EQ(archive_write_open_memory(a, buf.data(), buf.size(), &used), ARCHIVE_OK);
  for (const auto& m : members) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, m.name.c_str());
    archive_entry_set_filetype(e, m.type);
    archive_entry_set_perm(e, m.type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(m.data.size()));
    EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK) << archive_error_string(a);
    if (!m.data.empty()) archive_write_data(a, m.data.data(), m.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return std::string(buf.data(), used);
}

std::map<std::string, std::string> read_cpio(const std::string& path) {
  std::map<std::string, std::string> out;
  archive* a = archive_read_new();
  archive_read_support_format_cpio(a);
  EXPECT_EQ(archive_read_open_filename(a, path.c_str(), 1 << 16), ARCHIVE_OK);
  archive_entry* e = nullptr;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string data;
    if (archive_entry_filetype(e) == AE_IFLNK) {
      data = std::string("-> ") + archive_entry_symlink(e);
    } else if (archive_entry_filetype(e) == AE_IFCHR) {
      data = "c " + std::to_string(archive_entry_rdevmajor(e)) + "," +
             std::to_string(archive_entry_rdevminor(e));
    } else {
      char b[4096];
      la_ssize_t n;
      while ((n = archive_read_data(a, b, sizeof b)) > 0) data.append(b, static_cast<size_t>(n));
    }
    out[archive_entry_pathname(e)] = data;
  }
  archive_read_free(a);
  return out;
}

}  // namespace

TEST(ReadDeb, ExtractsWantedFilesFromSyntheticDeb) {
  TempDir tmp;
  std::string ko = test::make_ko({"name=x", "depends="});
  std::string data_tar = make_archive(archive_write_set_format_pax_restricted, true,
                                      {{"./boot/", "", AE_IFDIR},
                                       {"./boot/vmlinuz-1.2.3", "KERNEL"},
                                       {"./boot/config-1.2.3", "CONFIG_X=y\n"},
                                       {"./lib/modules/1.2.3/kernel/x.ko", ko},
                                       {"./usr/share/doc/readme", "skip me"}});
  std::string deb = make_archive(
      archive_write_set_format_ar_svr4, false,
      {{"debian-binary", "2.0\n"},
       {"control.tar.gz",
        make_archive(archive_write_set_format_ustar, true, {{"./control", "Package: x\n"}})},
       {"data.tar.gz", data_tar}});
  std::string deb_path = tmp.path() + "/linux-image-1.2.3_1.2.3-1_amd64.deb";
  core::write_file_atomic(deb_path, deb);

  std::map<std::string, std::string> got;
  read_deb_data(
      deb_path, [](std::string_view p) { return p.starts_with("boot/") || p.ends_with(".ko"); },
      [&](DebFile&& f) { got[f.path] = f.data; });
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got["boot/vmlinuz-1.2.3"], "KERNEL");
  EXPECT_EQ(got["boot/config-1.2.3"], "CONFIG_X=y\n");
  EXPECT_EQ(parse_modinfo(got["lib/modules/1.2.3/kernel/x.ko"], "x.ko").name, "x");

  core::write_file_atomic(tmp.path() + "/bad.deb", "not an ar archive");
  EXPECT_THROW(
      read_deb_data(
          tmp.path() + "/bad.deb", [](std::string_view) { return true; }, [](DebFile&&) {}),
      Error);
}

TEST(Cpio, DeterministicAndReadable) {
  TempDir tmp;
  auto build = [] {
    InitramfsTree tree;
    tree.add_symlink("/bin", "usr/bin");
    tree.add_file("/bin/busybox", "BUSYBOX", 0755);  // lands in /usr/bin via the symlink
    tree.add_file("/init", "#!/bin/busybox sh\n", 0755);
    tree.add_char_device("/dev/console", 5, 1, 0600);
    tree.add_char_device("/dev/null", 1, 3, 0666);
    return tree;
  };
  InitramfsTree tree = build();
  EXPECT_TRUE(tree.contains("/usr/bin/busybox"));
  EXPECT_FALSE(tree.contains("/bin/busybox"));
  write_cpio(tree, tmp.path() + "/a.cpio");
  write_cpio(build(), tmp.path() + "/b.cpio");
  std::string a = core::read_file(tmp.path() + "/a.cpio");
  EXPECT_EQ(a, core::read_file(tmp.path() + "/b.cpio"));
  EXPECT_EQ(a.substr(0, 6), "070701");

  auto entries = read_cpio(tmp.path() + "/a.cpio");
  EXPECT_EQ(entries["bin"], "-> usr/bin");
  EXPECT_EQ(entries["usr/bin/busybox"], "BUSYBOX");
  EXPECT_EQ(entries["dev/console"], "c 5,1");
  EXPECT_EQ(entries["dev/null"], "c 1,3");
  EXPECT_TRUE(entries.count("usr"));
  EXPECT_TRUE(entries.count("init"));
}

TEST(Cpio, FileUnderAFileIsAnError) {
  InitramfsTree tree;
  tree.add_file("/etc", "x", 0644);
  EXPECT_THROW(tree.add_file("/etc/passwd", "root", 0644), Error);
}

TEST(Manifest, RoundTrip) {
  ImageManifest m;
  m.image.name = "default";
  m.image.dir = "/old/place";
  m.image.kernel = "/old/place/vmlinuz";
  m.image.initrd = "/old/place/initramfs.cpio";
  m.image.kernel_release = "6.1.0-56-cloud-amd64";
  m.image.kernel_package = "linux-image-6.1.0-56-cloud-amd64 6.1.192-2";
  m.image.criu_version = "3.17.1";
  m.image.agent_version = "0.1.0+sha256.abc";
  m.image.content_hash = std::string(64, 'f');
  m.image.created = "2026-01-02T03:04:05Z";
  m.image.initrd_bytes = 123;
  m.image.kernel_bytes = 456;
  m.modules = {"virtio_ring", "virtio"};
  m.files = {{"/usr/bin/busybox", 1982256}};
  ImageManifest r = manifest_from_yaml(manifest_to_yaml(m), "/new/place", "test");
  EXPECT_EQ(r.image.dir, "/new/place");
  EXPECT_EQ(r.image.kernel, "/new/place/vmlinuz");
  EXPECT_EQ(r.image.initrd, "/new/place/initramfs.cpio");
  EXPECT_EQ(r.image.kernel_package, m.image.kernel_package);
  EXPECT_EQ(r.image.content_hash, m.image.content_hash);
  EXPECT_EQ(r.image.created, m.image.created);
  EXPECT_EQ(r.image.initrd_bytes, 123u);
  EXPECT_EQ(r.image.kernel_bytes, 456u);
  EXPECT_EQ(r.modules, m.modules);
  ASSERT_EQ(r.files.size(), 1u);
  EXPECT_EQ(r.files[0].path, "/usr/bin/busybox");
  EXPECT_EQ(r.files[0].size, 1982256u);
  EXPECT_EQ(r.image.kernel_flavor, KernelFlavor::debian);
  m.image.kernel_flavor = KernelFlavor::source;
  m.image.kernel = "/old/place/vmlinux";
  r = manifest_from_yaml(manifest_to_yaml(m), "/new/place", "test");
  EXPECT_EQ(r.image.kernel_flavor, KernelFlavor::source);
  EXPECT_EQ(r.image.kernel, "/new/place/vmlinux");
  // Manifests written before kernel flavors existed have Debian's kernel.
  std::string old = manifest_to_yaml(m);
  old.erase(old.find("kernel_flavor: source\n"), std::string("kernel_flavor: source\n").size());
  EXPECT_EQ(manifest_from_yaml(old, "/x", "test").image.kernel_flavor, KernelFlavor::debian);
  EXPECT_THROW(manifest_from_yaml("format_version: 99\n", "/x", "test"), Error);
  EXPECT_THROW(manifest_from_yaml("[1, 2", "/x", "test"), Error);
}

TEST(FindImage, MissingImageHintsAtBuild) {
  TempDir tmp;
  core::Config cfg;
  cfg.cache_dir = tmp.path();
  try {
    find_image(cfg, "default");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("guest image 'default' not found in"), std::string::npos);
    EXPECT_NE(e.hint().find("kcr image build"), std::string::npos);
  }
  // A directory without a manifest is an incomplete image: refused too, and not listed.
  fs::create_directories(tmp.path() + "/images/half");
  EXPECT_THROW(find_image(cfg, "half"), Error);
  EXPECT_TRUE(list_images(cfg).empty());
  EXPECT_THROW(remove_image(cfg, "nothing"), Error);
  remove_image(cfg, "half");
  EXPECT_FALSE(fs::exists(tmp.path() + "/images/half"));
}

TEST(BuildImage, RequiresAnAgent) {
  TempDir tmp;
  core::Config cfg;
  cfg.cache_dir = tmp.path();
  BuildOptions opts;
  EXPECT_THROW(build_image(cfg, opts, [](const std::string&) {}), Error);
}

}  // namespace kcr::images
