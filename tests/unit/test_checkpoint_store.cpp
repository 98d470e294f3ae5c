#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/checkpoint_store.hpp"
#include "core/error.hpp"
#include "core/sha256.hpp"
#include "criu_images.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace kcr::core;

namespace {

using kcr::test::TempDir;

CheckpointManifest manifest_for(std::vector<CheckpointFile> files) {
  CheckpointManifest m;
  m.workload = "counter";
  m.argv = {"sh", "-c", "x"};
  m.files = std::move(files);
  return m;
}

// Streams PATH=DATA into W as the agent would (two chunks + done).
CheckpointFile send(CheckpointWriter& w, const std::string& path, const std::string& data) {
  std::size_t half = data.size() / 2;
  w.write_chunk(path, 0, data.substr(0, half));
  w.write_chunk(path, half, data.substr(half));
  w.file_done(path, data.size(), sha256_hex(data));
  return {path, data.size(), sha256_hex(data)};
}

}  // namespace

TEST(CheckpointPaths, OnlyPlainNamesUnderImagesAndKnownLogs) {
  EXPECT_TRUE(is_valid_checkpoint_path("images/pages-1.img"));
  EXPECT_TRUE(is_valid_checkpoint_path("dump.log"));
  EXPECT_TRUE(is_valid_checkpoint_path("stats-dump"));
  for (const char* bad :
       {"", "images/", "images/../x", "images/a/b", "../etc/passwd", "/etc/passwd",
        "images/.hidden", "manifest.yaml", "images/a b", "other/x"}) {
    EXPECT_FALSE(is_valid_checkpoint_path(bad)) << bad;
  }
}

TEST(CheckpointPaths, PreDumpRoundsLiveUnderParents) {
  EXPECT_TRUE(is_valid_checkpoint_path("parents/1/images/pages-1.img"));
  EXPECT_TRUE(is_valid_checkpoint_path("parents/12/dump.log"));
  EXPECT_TRUE(is_valid_checkpoint_path("parents/999/stats-dump"));
  for (const char* bad :
       {"parents/0/images/a", "parents/01/images/a", "parents/1000/images/a", "parents//images/a",
        "parents/x/images/a", "parents/1", "parents/1/", "parents/1/parents/2/images/a",
        "parents/1/images/../a", "parents/1/manifest.yaml", "parents/-1/images/a"}) {
    EXPECT_FALSE(is_valid_checkpoint_path(bad)) << bad;
  }
}

TEST(CheckpointManifest, PreDumpRoundsRoundTripInOrder) {
  CheckpointManifest m = manifest_for({{"images/a.img", 3, std::string(64, 'a')},
                                       {"parents/1/images/p.img", 5, std::string(64, 'b')}});
  m.name = "x";
  m.pre_dumps.push_back({1, 100, 900, 2560, 10485760});
  m.pre_dumps.push_back({2, 50, 200, 12, 49152});
  EXPECT_EQ(m.image_bytes(), 3u);
  auto back = manifest_from_yaml(manifest_to_yaml(m), "t");
  ASSERT_EQ(back.pre_dumps.size(), 2u);
  EXPECT_EQ(back.pre_dumps[0].round, 1u);
  EXPECT_EQ(back.pre_dumps[0].pages_written, 2560u);
  EXPECT_EQ(back.pre_dumps[1].bytes, 49152u);
  EXPECT_EQ(back.files[1].path, "parents/1/images/p.img");

  std::string shuffled = manifest_to_yaml(m);
  shuffled.replace(shuffled.find("round: 2"), 8, "round: 7");
  EXPECT_THROW(manifest_from_yaml(shuffled, "t"), kcr::Error);
}

// Found by tests/fuzz/fuzz_manifest.cpp: YAML's emitter replaces bytes that are not UTF-8,
// so a manifest holding them (an imported archive's) changed silently when committed.
TEST(CheckpointManifest, TextThatIsNotUtf8IsRefused) {
  CheckpointManifest m = manifest_for({{"images/a.img", 3, std::string(64, 'a')}});
  m.name = "x";
  m.argv = {"sh", "-c", "echo h\xc3\xa9 \xf0\x9f\x99\x82"};
  EXPECT_EQ(manifest_from_yaml(manifest_to_yaml(m), "t").argv, m.argv);
  for (std::string bad : {"\xfe\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80"}) {
    std::string yaml = manifest_to_yaml(m);
    yaml.replace(yaml.find("echo"), 4, bad);
    EXPECT_THROW(manifest_from_yaml(yaml, "t"), kcr::Error) << yaml;
  }
}

// Found by tests/fuzz/fuzz_manifest.cpp: yaml-cpp wrote a lone carriage return plain, and
// read back it was a line break: text with control characters must survive a round trip.
TEST(CheckpointManifest, ControlCharactersSurviveARoundTrip) {
  CheckpointManifest m = manifest_for({{"images/a.img", 3, std::string(64, 'a')}});
  m.name = "x";
  m.image = "\r";
  m.vm = "a\r";
  m.argv = {"sh", "-c", "printf 'a\r\n'\r", "\x01\t\x1f"};
  CheckpointManifest back = manifest_from_yaml(manifest_to_yaml(m), "t");
  EXPECT_EQ(back.image, m.image);
  EXPECT_EQ(back.vm, m.vm);
  EXPECT_EQ(back.argv, m.argv);
  EXPECT_EQ(manifest_to_yaml(back), manifest_to_yaml(m));
}

// A workload with a root filesystem of its own: the manifest names its base, and a damaged
// name is refused rather than looked up in the store.
TEST(CheckpointManifest, RootfsDigestRoundTripsAndAMalformedOneIsRefused) {
  CheckpointManifest m = manifest_for({{"images/rootfs-diff.tar", 3, std::string(64, 'a')}});
  m.name = "x";
  EXPECT_EQ(manifest_to_yaml(m).find("rootfs:"), std::string::npos);
  m.rootfs_digest = "sha256:" + std::string(64, 'e');
  std::string yaml = manifest_to_yaml(m);
  EXPECT_EQ(manifest_from_yaml(yaml, "t").rootfs_digest, m.rootfs_digest);
  for (std::string bad : {"sha256:" + std::string(63, 'e'), "md5:" + std::string(64, 'e'),
                          "sha256:" + std::string(64, 'E'), std::string("../../x")}) {
    std::string broken = yaml;
    broken.replace(broken.find(m.rootfs_digest), m.rootfs_digest.size(), bad);
    EXPECT_THROW(manifest_from_yaml(broken, "t"), kcr::Error) << bad;
  }
}

TEST(CheckpointStore, CommitMakesACompleteVerifiedCheckpointAppear) {
  TempDir t;
  CheckpointStore store(t.path());
  std::vector<CheckpointFile> files;
  {
    CheckpointWriter w(store, "cp1");
    files.push_back(send(w, "images/inventory.img", kcr::test::inventory_image()));
    files.push_back(send(w, "images/pages-1.img", std::string(3 << 20, 'p')));
    files.push_back(send(w, "dump.log", "log\n"));
    EXPECT_FALSE(store.exists("cp1"));
    w.commit(manifest_for(files));
  }
  ASSERT_TRUE(store.exists("cp1"));
  auto m = store.load("cp1");
  EXPECT_EQ(m.name, "cp1");
  EXPECT_EQ(m.files.size(), 3u);
  EXPECT_EQ(m.image_bytes(), kcr::test::inventory_image().size() + (3u << 20));
  EXPECT_NO_THROW(store.verify(m));
  ASSERT_EQ(store.list().size(), 1u);
  // nothing but the checkpoint is left in the store directory
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(store.root())) ++entries;
  EXPECT_EQ(entries, 1);
}

// Digests prove the files are what the guest sent; the magics prove the guest
// sent CRIU images.
TEST(CheckpointStore, VerifyRefusesAnImageWithoutItsMagicOrCutShort) {
  TempDir t;
  CheckpointStore store(t.path());
  auto make = [&](const std::string& name, const std::string& pstree) {
    CheckpointWriter w(store, name);
    std::vector<CheckpointFile> files;
    files.push_back(send(w, "images/inventory.img", kcr::test::inventory_image()));
    files.push_back(send(w, "images/pstree.img", pstree));
    files.push_back(send(w, "images/pages-1.img", std::string(4096, 'p')));
    auto m = manifest_for(files);
    m.name = name;
    w.commit(m);
    return store.load(name);
  };
  auto why = [&](const CheckpointManifest& m) {
    try {
      store.verify(m);
    } catch (const kcr::Error& e) {
      return std::string(e.what());
    }
    return std::string("verified");
  };
  EXPECT_EQ(why(make("good", kcr::test::pstree_image())), "verified");
  std::string wrong = kcr::test::pstree_image();
  wrong[4] ^= 1;  // the kind's magic
  EXPECT_NE(why(make("wrong", wrong)).find("CRIU image pstree.img has magic"), std::string::npos);
  std::string cut = kcr::test::pstree_image();
  cut.pop_back();
  EXPECT_NE(why(make("cut", cut)).find("checkpoint 'cut': CRIU image pstree.img is truncated"),
            std::string::npos);
  EXPECT_NE(why(make("text", "not an image")).find("pstree.img starts with"), std::string::npos);
}

TEST(CheckpointStore, AbandonedWriterLeavesNothing) {
  TempDir t;
  CheckpointStore store(t.path());
  {
    CheckpointWriter w(store, "cp1");
    send(w, "images/pages-1.img", "abc");
  }
  EXPECT_FALSE(store.exists("cp1"));
  EXPECT_TRUE(fs::is_empty(store.root()));
}

TEST(CheckpointStore, RejectsWhatAnUntrustedGuestMightSend) {
  TempDir t;
  CheckpointStore store(t.path());
  CheckpointWriter w(store, "cp1");
  EXPECT_THROW(w.write_chunk("../../escape", 0, "x"), kcr::Error);
  EXPECT_THROW(w.write_chunk("images/../../x", 0, "x"), kcr::Error);
  w.write_chunk("images/a.img", 0, "abc");
  EXPECT_THROW(w.write_chunk("images/a.img", 10, "gap"), kcr::Error);           // not contiguous
  EXPECT_THROW(w.file_done("images/a.img", 4, sha256_hex("abc")), kcr::Error);  // wrong size
  EXPECT_THROW(w.file_done("images/a.img", 3, sha256_hex("abd")), kcr::Error);  // wrong digest
  EXPECT_THROW(w.file_done("images/never-sent.img", 5, "00"), kcr::Error);
  EXPECT_FALSE(fs::exists(t.path() + "/escape"));
}

TEST(CheckpointStore, CommitRefusesAListThatDoesNotMatchWhatArrived) {
  TempDir t;
  CheckpointStore store(t.path());
  CheckpointWriter w(store, "cp1");
  auto f = send(w, "images/a.img", "abc");
  EXPECT_THROW(w.commit(manifest_for({f, {"images/b.img", 1, sha256_hex("x")}})), kcr::Error);
  auto g = f;
  g.sha256 = sha256_hex("zzz");
  EXPECT_THROW(w.commit(manifest_for({g})), kcr::Error);
  EXPECT_THROW(w.commit(manifest_for({})), kcr::Error);
  EXPECT_FALSE(store.exists("cp1"));
}

TEST(CheckpointStore, ResentFileReplacesTheFirstCopy) {
  TempDir t;
  CheckpointStore store(t.path());
  CheckpointWriter w(store, "cp1");
  send(w, "images/a.img", "first version");
  auto f = send(w, "images/a.img", "second");
  w.commit(manifest_for({f}));
  auto m = store.load("cp1");
  EXPECT_NO_THROW(store.verify(m));
  std::ifstream in(store.dir("cp1") + "/images/a.img");
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, "second");
}

TEST(CheckpointStore, VerifyNamesTheDamagedFile) {
  TempDir t;
  CheckpointStore store(t.path());
  {
    CheckpointWriter w(store, "cp1");
    auto f = send(w, "images/pages-1.img", "0123456789");
    w.commit(manifest_for({f}));
  }
  auto m = store.load("cp1");
  {
    std::fstream f(store.dir("cp1") + "/images/pages-1.img", std::ios::in | std::ios::out);
    f.seekp(3);
    f.put('X');
  }
  try {
    store.verify(m);
    FAIL() << "verify passed a damaged checkpoint";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("images/pages-1.img"), std::string::npos) << e.what();
  }
  fs::remove(store.dir("cp1") + "/images/pages-1.img");
  EXPECT_THROW(store.verify(m), kcr::Error);
}

TEST(CheckpointStore, VerifyRefusesAFileTheManifestDoesNotList) {
  // A manifest cut after a whole line parses, with the last files gone.
  TempDir t;
  CheckpointStore store(t.path());
  {
    CheckpointWriter w(store, "cp1");
    auto a = send(w, "images/pages-1.img", "0123456789");
    auto b = send(w, "images/pages-2.img", "abc");
    w.commit(manifest_for({a, b}));
  }
  auto m = store.load("cp1");
  EXPECT_NO_THROW(store.verify(m));
  m.files.pop_back();
  try {
    store.verify(m);
    FAIL() << "verify passed a manifest that lost a file";
  } catch (const kcr::Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("images/pages-2.img"), std::string::npos) << what;
    EXPECT_NE(what.find("manifest.yaml"), std::string::npos) << what;
  }
}

TEST(CheckpointStore, DuplicateAndMissingNames) {
  TempDir t;
  CheckpointStore store(t.path());
  {
    CheckpointWriter w(store, "cp1");
    w.commit(manifest_for({send(w, "images/a.img", "a")}));
  }
  EXPECT_THROW(CheckpointWriter(store, "cp1"), kcr::Error);
  EXPECT_THROW(CheckpointWriter(store, "../x"), kcr::Error);
  EXPECT_THROW(store.load("nope"), kcr::Error);
  EXPECT_THROW(store.remove("nope"), kcr::Error);
  store.remove("cp1");
  EXPECT_FALSE(store.exists("cp1"));
}

TEST(CheckpointManifest, YamlRoundTripAndVersionCheck) {
  CheckpointManifest m = manifest_for({{"images/a.img", 3, std::string(64, 'a')}});
  m.name = "x";
  m.criu_version = "3.17.1";
  m.options.set_tcp_established(true);
  m.options.set_manage_cgroups_mode("soft");
  CriuDumpStats s;
  s.frozen_time = 1234;
  s.pages_written = 99;
  m.stats = s;
  m.dump_ms = 340;
  auto back = manifest_from_yaml(manifest_to_yaml(m), "t");
  EXPECT_EQ(back.name, "x");
  EXPECT_EQ(back.argv, m.argv);
  EXPECT_EQ(back.criu_version, "3.17.1");
  EXPECT_TRUE(back.options.tcp_established());
  EXPECT_EQ(back.options.manage_cgroups_mode(), "soft");
  ASSERT_TRUE(back.stats.has_value());
  EXPECT_EQ(back.stats->frozen_time, 1234u);
  EXPECT_EQ(back.stats->pages_written, 99u);
  EXPECT_EQ(back.dump_ms, 340u);
  ASSERT_EQ(back.files.size(), 1u);
  EXPECT_EQ(back.files[0].size, 3u);

  std::string future = manifest_to_yaml(m);
  future.replace(future.find("format_version: 1"), 17, "format_version: 99");
  EXPECT_THROW(manifest_from_yaml(future, "t"), kcr::Error);
  std::string evil = manifest_to_yaml(m);
  evil.replace(evil.find("images/a.img"), 12, "../../etc/pw");
  EXPECT_THROW(manifest_from_yaml(evil, "t"), kcr::Error);
  EXPECT_THROW(manifest_from_yaml("{{{", "t"), kcr::Error);
}

TEST(CheckpointStore, AGuestCannotSendMoreThanTheLimit) {
  TempDir t;
  CheckpointStore store(t.path());
  CheckpointWriter w(store, "cp1", 10);
  w.write_chunk("images/a.img", 0, "0123456789");
  EXPECT_THROW(w.write_chunk("images/a.img", 10, "x"), kcr::Error);
  EXPECT_THROW(w.write_chunk("images/b.img", 0, "y"), kcr::Error);
}

TEST(CheckpointStore, CleanAbandonedRemovesWhatADeadWriterLeftOnly) {
  TempDir t;
  CheckpointStore store(t.path());
  CheckpointWriter live(store, "live");
  send(live, "images/pages-1.img", "abc");
  // What a kcr killed mid-checkpoint leaves: a partial directory and its lock, unheld.
  fs::create_directories(store.root() + "/.partial-dead-123/images");
  std::ofstream(store.root() + "/.partial-dead-123.lock");
  std::ofstream(store.root() + "/.partial-gone-456.lock");  // its directory already renamed
  auto cleaned = store.clean_abandoned();
  EXPECT_EQ(cleaned, (std::vector<std::string>{".partial-dead-123"}));
  EXPECT_FALSE(fs::exists(store.root() + "/.partial-dead-123"));
  EXPECT_FALSE(fs::exists(store.root() + "/.partial-dead-123.lock"));
  EXPECT_FALSE(fs::exists(store.root() + "/.partial-gone-456.lock"));
  EXPECT_TRUE(fs::exists(live.dir()));  // a writer that holds its lock is left alone
}
