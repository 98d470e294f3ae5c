#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>

#include "core/checkpoint_archive.hpp"
#include "core/checkpoint_store.hpp"
#include "core/error.hpp"
#include "core/files.hpp"
#include "core/sha256.hpp"
#include "criu_images.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace kcr::core;
using kcr::test::TempDir;

namespace {

// The files of a checkpoint with one pre-dump round; pages span several of
// the archive code's buffers.
std::map<std::string, std::string> sample_files() {
  std::string pages;
  for (uint64_t i = 0; i < 700000; ++i) pages += static_cast<char>((i * 7919) % 251);
  return {{"images/inventory.img", kcr::test::inventory_image()},
          {"images/pages-1.img", pages},
          {"images/pstree.img", kcr::test::pstree_image()},
          {"dump.log", "(00.001) dump done\n"},
          {"stats-dump", "stats"},
          {"parents/1/images/pages-1.img", pages.substr(0, 5000)},
          {"parents/1/dump.log", "pre-dump\n"}};
}

CheckpointManifest manifest_of(const std::map<std::string, std::string>& files,
                               const std::string& name = "c1") {
  CheckpointManifest m;
  m.name = name;
  m.workload = "counter";
  m.argv = {"sh", "-c", "x"};
  m.vm = "demo";
  m.pre_dumps.push_back({1, 10, 20, 2, 5000});
  for (const auto& [path, data] : files) m.files.push_back({path, data.size(), sha256_hex(data)});
  return m;
}

void store_checkpoint(const CheckpointStore& store, const std::string& name,
                      const std::map<std::string, std::string>& files) {
  CheckpointWriter w(store, name);
  for (const auto& [path, data] : files) {
    w.write_chunk(path, 0, data);
    w.file_done(path, data.size(), sha256_hex(data));
  }
  w.commit(manifest_of(files, name));
}

struct Entry {
  std::string name;
  std::string content;
  unsigned type = AE_IFREG;
  std::string link = {};  // symlink target, or hard link target when hardlink
  bool hardlink = false;
};

// Writes ENTRIES as an uncompressed tar, exactly as given.
void write_tar(const std::string& path, const std::vector<Entry>& entries) {
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_add_filter_none(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.name.c_str());
    archive_entry_set_filetype(ae, e.type);
    archive_entry_set_perm(ae, 0644);
    if (e.type == AE_IFLNK) archive_entry_set_symlink(ae, e.link.c_str());
    if (e.hardlink) archive_entry_set_hardlink(ae, e.link.c_str());
    if (e.type == AE_IFCHR) archive_entry_set_rdev(ae, makedev(1, 3));
    bool data = e.type == AE_IFREG && !e.hardlink;
    archive_entry_set_size(ae, data ? static_cast<la_int64_t>(e.content.size()) : 0);
    ASSERT_EQ(archive_write_header(a, ae), ARCHIVE_OK) << e.name;
    if (data && !e.content.empty()) archive_write_data(a, e.content.data(), e.content.size());
    archive_entry_free(ae);
  }
  archive_write_close(a);
  archive_write_free(a);
}

// A well-formed archive of FILES: config.dump first, then the files.
std::vector<Entry> valid_entries(const std::map<std::string, std::string>& files) {
  std::vector<Entry> out{{"config.dump", manifest_to_yaml(manifest_of(files))},
                         {"spec.dump", "{}\n"},
                         {"checkpoint/", "", AE_IFDIR}};
  for (const auto& [path, data] : files) out.push_back({archive_name_of(path), data});
  return out;
}

std::vector<std::string> entries_in(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) out.push_back(e.path().string());
  return out;
}

class ArchiveImport : public ::testing::Test {
 protected:
  std::string archive() const { return m_tmp.path() + "/in.tar"; }

  // Imports the archive into an empty store, expecting a refusal; checks
  // that nothing was left anywhere and returns the message.
  std::string refusal(ImportOptions options = {}) {
    std::string data = m_tmp.path() + "/data";
    CheckpointStore store(data);
    std::string message;
    try {
      import_checkpoint(store, archive(), options);
      ADD_FAILURE() << "import succeeded";
    } catch (const kcr::Error& e) {
      message = e.what();
    }
    // At most the store's own (empty) directory: no partial checkpoint, no file.
    auto left = entries_in(data);
    std::erase(left, data + "/checkpoints");
    EXPECT_EQ(left, std::vector<std::string>{}) << message;
    // verify refuses it the same way without a store
    EXPECT_THROW(verify_archive(archive(), {}, options.max_bytes), kcr::Error);
    fs::remove_all(data);
    return message;
  }

  TempDir m_tmp;
  std::map<std::string, std::string> m_files = sample_files();
};

}  // namespace

TEST(ArchiveNames, CheckpointImagesLiveUnderCheckpointLikePodman) {
  EXPECT_EQ(archive_name_of("images/pages-1.img"), "checkpoint/pages-1.img");
  EXPECT_EQ(archive_name_of("dump.log"), "dump.log");
  EXPECT_EQ(archive_name_of("stats-dump"), "stats-dump");
  EXPECT_EQ(archive_name_of("manifest.yaml"), "config.dump");
  EXPECT_EQ(archive_name_of("parents/2/images/pages-1.img"), "parents/2/checkpoint/pages-1.img");
  EXPECT_EQ(archive_name_of("parents/2/dump.log"), "parents/2/dump.log");
  for (const char* p : {"images/a.img", "dump.log", "stats-dump", "restore.log", "manifest.yaml",
                        "parents/1/images/x", "parents/999/stats-dump"}) {
    EXPECT_EQ(store_path_of(archive_name_of(p)), std::optional<std::string>(p)) << p;
  }
  for (const char* bad :
       {"images/a.img", "spec.dump", "checkpoint/", "checkpoint/../x", "/dump.log", "./dump.log",
        "checkpoint/a/b", "parents/1/config.dump", "parents/0/dump.log", "parents/1/images/x",
        "etc/passwd", "checkpoint/.hidden", ""}) {
    EXPECT_EQ(store_path_of(bad), std::nullopt) << bad;
  }
}

TEST(ArchiveCompression, NamesAndSuffixes) {
  EXPECT_EQ(compression_named("zstd"), Compression::zstd);
  EXPECT_THROW(compression_named("xz"), kcr::Error);
  EXPECT_EQ(compression_for_path("a/b.tar.zst"), Compression::zstd);
  EXPECT_EQ(compression_for_path("b.tar.gz"), Compression::gzip);
  EXPECT_EQ(compression_for_path("b.tgz"), Compression::gzip);
  EXPECT_EQ(compression_for_path("b.tar"), Compression::none);
  EXPECT_EQ(compression_for_path("b.zip"), std::nullopt);
}

TEST(ArchiveRoundTrip, ExportThenImportIntoAFreshStoreIsByteIdentical) {
  TempDir tmp;
  CheckpointStore src(tmp.path() + "/src");
  store_checkpoint(src, "c1", sample_files());
  for (auto c : {Compression::zstd, Compression::gzip, Compression::none}) {
    SCOPED_TRACE(compression_name(c));
    std::string file = tmp.path() + "/c1-" + compression_name(c) + ".tar";
    auto summary = export_checkpoint(src, "c1", file, c);
    EXPECT_EQ(summary.files, sample_files().size());
    EXPECT_GT(summary.archive_bytes, 0u);
    if (c == Compression::zstd) {
      EXPECT_LT(summary.archive_bytes, summary.content_bytes);
    }
    EXPECT_EQ(verify_archive(file).name, "c1");

    CheckpointStore dst(tmp.path() + "/dst-" + compression_name(c));
    auto m = import_checkpoint(dst, file);
    EXPECT_EQ(m.name, "c1");
    auto back = dst.load("c1");
    dst.verify(back);
    EXPECT_EQ(back.pre_dumps.size(), 1u);
    EXPECT_EQ(back.files.size(), src.load("c1").files.size());
    for (const auto& [path, data] : sample_files()) {
      EXPECT_EQ(read_file(dst.dir("c1") + "/" + path), data) << path;
    }
    // Nothing but the checkpoint: no .partial-* left behind.
    std::vector<std::string> top;
    for (const auto& e : fs::directory_iterator(dst.root())) top.push_back(e.path().filename());
    EXPECT_EQ(top, std::vector<std::string>{"c1"});
  }
  // No temporary file beside the archives either.
  for (const auto& e : fs::directory_iterator(tmp.path())) {
    EXPECT_NE(e.path().filename().string().rfind(".partial-", 0), 0u) << e.path();
  }
}

TEST(ArchiveRoundTrip, AnExistingNameIsRefusedUnlessAnotherIsGiven) {
  TempDir tmp;
  CheckpointStore store(tmp.path() + "/data");
  store_checkpoint(store, "c1", sample_files());
  std::string file = tmp.path() + "/c1.tar.zst";
  export_checkpoint(store, "c1", file, Compression::zstd);
  try {
    import_checkpoint(store, file);
    FAIL() << "import over an existing name";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("--name"), std::string::npos);
  }
  EXPECT_EQ(import_checkpoint(store, file, {.name = "c2"}).name, "c2");
  store.verify(store.load("c2"));
  EXPECT_EQ(store.load("c2").name, "c2");
  ImportOptions fresh;
  fresh.fresh_name_if_taken = true;
  EXPECT_EQ(import_checkpoint(store, file, fresh).name, "c1-imported");
  EXPECT_EQ(import_checkpoint(store, file, fresh).name, "c1-imported-2");
  for (const auto& e : fs::directory_iterator(store.root())) {
    EXPECT_NE(e.path().filename().string().rfind(".partial-", 0), 0u) << e.path();
  }
}

TEST(ArchiveRoundTrip, ExportRefusesADamagedCheckpointAndLeavesNoFile) {
  TempDir tmp;
  CheckpointStore store(tmp.path() + "/data");
  store_checkpoint(store, "c1", sample_files());
  std::string img = store.dir("c1") + "/images/inventory.img";
  fs::permissions(img, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(img, std::ios::trunc) << "INVENTORY";
  std::string file = tmp.path() + "/c1.tar";
  EXPECT_THROW(export_checkpoint(store, "c1", file, Compression::none), kcr::Error);
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(tmp.path())) left.push_back(e.path().filename());
  EXPECT_EQ(left, std::vector<std::string>{"data"});
}

TEST(ArchiveRoundTrip, ProgressIsReportedAtMostOnceASecond) {
  TempDir tmp;
  CheckpointStore store(tmp.path() + "/data");
  store_checkpoint(store, "c1", sample_files());
  int calls = 0;
  export_checkpoint(store, "c1", tmp.path() + "/c1.tar", Compression::none,
                    [&](uint64_t, uint64_t) { ++calls; });
  EXPECT_LE(calls, 1);  // a small one takes well under a second
}

TEST_F(ArchiveImport, AValidHandBuiltArchiveImports) {
  write_tar(archive(), valid_entries(m_files));
  CheckpointStore store(m_tmp.path() + "/data");
  EXPECT_EQ(import_checkpoint(store, archive()).name, "c1");
  store.verify(store.load("c1"));
}

TEST_F(ArchiveImport, RefusesAnAbsolutePath) {
  auto e = valid_entries(m_files);
  e.push_back({"/etc/passwd", "root"});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry '/etc/passwd' has an absolute path"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesDotDot) {
  auto e = valid_entries(m_files);
  e.push_back({"checkpoint/../../evil", "x"});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'checkpoint/../../evil' climbs out with '..'"),
            std::string::npos);
}

TEST_F(ArchiveImport, RefusesASymlink) {
  auto e = valid_entries(m_files);
  e[3] = {e[3].name, "", AE_IFLNK, "/etc/passwd"};
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("is a symbolic link"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesAHardLink) {
  auto e = valid_entries(m_files);
  e.push_back({"checkpoint/extra.img", "", AE_IFREG, "checkpoint/inventory.img", true});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'checkpoint/extra.img' is a hard link"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesADeviceNode) {
  auto e = valid_entries(m_files);
  e.insert(e.begin() + 1, {"checkpoint/null", "", AE_IFCHR});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'checkpoint/null' is a device node"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesAFifo) {
  auto e = valid_entries(m_files);
  e.insert(e.begin() + 1, {"dump.log", "", AE_IFIFO});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'dump.log' is a FIFO"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesADirectoryInAnOddPlace) {
  auto e = valid_entries(m_files);
  e.insert(e.begin() + 2, {"checkpoint/sub/", "", AE_IFDIR});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'checkpoint/sub/' is a directory in an unexpected place"),
            std::string::npos);
  e = valid_entries(m_files);
  e.insert(e.begin() + 2, {"images/", "", AE_IFDIR});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("unexpected place"), std::string::npos);
}

TEST_F(ArchiveImport, KnownDirectoriesAreAccepted) {
  auto e = valid_entries(m_files);
  for (const char* d : {"parents/", "parents/1/", "parents/1/checkpoint/"}) {
    e.insert(e.begin() + 2, {d, "", AE_IFDIR});
  }
  write_tar(archive(), e);
  CheckpointStore store(m_tmp.path() + "/data");
  EXPECT_EQ(import_checkpoint(store, archive()).name, "c1");
}

TEST_F(ArchiveImport, RefusesMoreBytesThanTheLimit) {
  write_tar(archive(), valid_entries(m_files));
  ImportOptions small;
  small.max_bytes = 1000;
  EXPECT_NE(refusal(small).find("lists more than 1000 bytes"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesAnEntryLargerThanTheManifestSays) {
  auto e = valid_entries(m_files);
  for (auto& x : e) {
    if (x.name == "checkpoint/inventory.img") x.content += std::string(1 << 20, 'A');
  }
  write_tar(archive(), e);
  auto size = kcr::test::inventory_image().size();
  EXPECT_NE(refusal().find("entry 'checkpoint/inventory.img' has " +
                           std::to_string(size + (1 << 20)) + " bytes, config.dump says " +
                           std::to_string(size)),
            std::string::npos);
}

TEST_F(ArchiveImport, RefusesADuplicateEntry) {
  auto e = valid_entries(m_files);
  e.push_back({"dump.log", m_files["dump.log"]});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'dump.log' appears twice"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesAFileMissingFromTheArchive) {
  auto e = valid_entries(m_files);
  std::erase_if(e, [](const Entry& x) { return x.name == "parents/1/checkpoint/pages-1.img"; });
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'parents/1/checkpoint/pages-1.img' listed in config.dump is "
                           "missing from the archive"),
            std::string::npos);
}

TEST_F(ArchiveImport, RefusesAFileTheManifestDoesNotList) {
  auto e = valid_entries(m_files);
  e.push_back({"checkpoint/core-9.img", "x"});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'checkpoint/core-9.img' is not listed in config.dump"),
            std::string::npos);
  e = valid_entries(m_files);
  e.push_back({"rootfs-diff.tar", "x"});
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'rootfs-diff.tar' is not a file a kcr checkpoint archive holds"),
            std::string::npos);
}

TEST_F(ArchiveImport, RefusesADigestMismatch) {
  auto e = valid_entries(m_files);
  for (auto& x : e) {
    if (x.name == "checkpoint/pages-1.img") x.content[400000] ^= 1;
  }
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("entry 'checkpoint/pages-1.img' does not match its sha256 digest"),
            std::string::npos);
}

TEST_F(ArchiveImport, RefusesATruncatedArchive) {
  TempDir tmp;
  CheckpointStore store(tmp.path() + "/data");
  store_checkpoint(store, "c1", m_files);
  for (auto c : {Compression::none, Compression::zstd}) {
    export_checkpoint(store, "c1", archive(), c);
    auto size = fs::file_size(archive());
    fs::resize_file(archive(), c == Compression::none ? size / 2 : size - 100);
    std::string why = refusal();
    EXPECT_NE(why.find("archive " + archive()), std::string::npos) << why;
    EXPECT_TRUE(why.find("runcated") != std::string::npos ||
                why.find("missing from the archive") != std::string::npos)
        << why;
  }
}

TEST_F(ArchiveImport, RefusesAManifestOfAnotherFormatVersion) {
  auto e = valid_entries(m_files);
  auto m = manifest_of(m_files);
  m.format_version = 99;
  e[0].content = manifest_to_yaml(m);
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("checkpoint format version 99 is not supported"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesAGarbageManifest) {
  auto e = valid_entries(m_files);
  e[0].content = "\x01\x02 not: [yaml";
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("config.dump: malformed checkpoint manifest"), std::string::npos);
  e[0].content = "just a string\n";
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("malformed checkpoint manifest"), std::string::npos);
}

TEST_F(ArchiveImport, RefusesAManifestThatIsNotFirstOrMissing) {
  auto e = valid_entries(m_files);
  std::swap(e[0], e[1]);
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("the first entry is 'spec.dump', not config.dump"), std::string::npos);
  write_tar(archive(), {});
  EXPECT_NE(refusal().find("archive"), std::string::npos);
  std::ofstream(archive(), std::ios::trunc) << "this is not a tar file at all, just text\n";
  EXPECT_NE(refusal().find("archive " + archive()), std::string::npos);
}

TEST_F(ArchiveImport, RefusesAManifestListingAPathTwice) {
  auto e = valid_entries(m_files);
  auto m = manifest_of(m_files);
  m.files.push_back(m.files[0]);
  e[0].content = manifest_to_yaml(m);
  write_tar(archive(), e);
  EXPECT_NE(refusal().find("lists dump.log twice"), std::string::npos);
}
