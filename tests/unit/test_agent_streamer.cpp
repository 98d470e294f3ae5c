#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/checksum64.hpp"
#include "images/agent/streamer.hpp"
#include "tests/unit/temp_dir.hpp"

namespace kcr::agent {
namespace {

std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(gen());
  return s;
}

void write_file(const std::string& path, const std::string& bytes) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600));
  ASSERT_TRUE(fd);
  ASSERT_EQ(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

// The host's side: the files as the chunks build them, from the disk or inline.
struct Host {
  std::string disk_path;
  std::map<std::string, std::string> files;
  std::map<std::string, int> on_disk, inline_chunks;
  std::vector<proto::FileDone> done;

  bool take(const proto::Response& r) {
    if (r.has_file_done()) {
      done.push_back(r.file_done());
      return true;
    }
    const auto& c = r.chunk();
    std::string bytes;
    if (c.on_disk()) {
      bytes.resize(c.disk_length());
      UniqueFd fd(::open(disk_path.c_str(), O_RDONLY));
      EXPECT_EQ(::pread(fd.get(), bytes.data(), bytes.size(), static_cast<off_t>(c.disk_offset())),
                static_cast<ssize_t>(bytes.size()));
      on_disk[c.path()]++;
    } else {
      bytes = c.data();
      inline_chunks[c.path()]++;
    }
    std::string& file = files[c.path()];
    file.resize(c.offset());  // a file sent again starts over at 0
    file += bytes;
    return true;
  }
};

class StreamerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    images = dir.path() + "/images";
    ASSERT_EQ(::mkdir(images.c_str(), 0700), 0);
    host.disk_path = dir.path() + "/out.img";
    UniqueFd fd(::open(host.disk_path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
    ASSERT_TRUE(fd);
    ASSERT_EQ(::ftruncate(fd.get(), k_disk_size), 0);
    disk.emplace(std::move(fd), k_disk_size, host.disk_path);
  }

  static constexpr std::uint64_t k_disk_size = 64u << 20;
  test::TempDir dir;
  std::string images;
  Host host;
  std::optional<DataDisk> disk;
  SendFn send = [this](proto::Response& r) { return host.take(r); };
};

TEST_F(StreamerTest, PagesGoThroughTheDiskWhileCriuWritesOtherImagesInline) {
  const std::string pages = random_bytes(5u << 20, 1);
  const std::string inventory = random_bytes(100000, 2);
  write_file(images + "/pages-1.img", pages);
  write_file(images + "/inventory.img", inventory);

  Streamer streamer(7, 1 << 20, send);
  streamer.use_disk(&*disk);
  streamer.scan_images(images);
  streamer.pump_all();
  EXPECT_GE(host.on_disk["images/pages-1.img"], 1);
  EXPECT_EQ(host.inline_chunks["images/pages-1.img"], 0);
  // The writer may still cut inventory.img short: it is read with pread, never mapped.
  EXPECT_EQ(host.on_disk["images/inventory.img"], 0);
  EXPECT_GE(host.inline_chunks["images/inventory.img"], 1);

  // CRIU exits; what it wrote last goes through the disk.
  const std::string more = random_bytes(300000, 3);
  write_file(images + "/fs-1.img", more);
  streamer.writer_done();
  streamer.scan_images(images);
  auto done = streamer.finish();
  EXPECT_GE(host.on_disk["images/fs-1.img"], 1);
  EXPECT_EQ(host.inline_chunks["images/fs-1.img"], 0);

  ASSERT_EQ(done.size(), 3u);
  EXPECT_EQ(host.done.size(), 3u);
  EXPECT_EQ(host.files["images/pages-1.img"], pages);
  EXPECT_EQ(host.files["images/inventory.img"], inventory);
  EXPECT_EQ(host.files["images/fs-1.img"], more);
  for (const auto& f : done) {
    core::Checksum64 sum;
    sum.update(host.files[f.path()]);
    EXPECT_EQ(f.checksum64(), sum.hex_digest()) << f.path();
    EXPECT_EQ(f.size(), host.files[f.path()].size()) << f.path();
  }
}

TEST_F(StreamerTest, AnImageRewrittenShorterInPlaceIsSentAgainWhole) {
  write_file(images + "/inventory.img", random_bytes(200000, 4));
  Streamer streamer(7, 1 << 20, send);
  streamer.use_disk(&*disk);
  streamer.scan_images(images);
  streamer.pump_all();
  ASSERT_EQ(host.files["images/inventory.img"].size(), 200000u);

  // The same inode, cut short and written again, as an open with O_TRUNC does.
  const std::string final_bytes = random_bytes(5000, 5);
  {
    UniqueFd fd(::open((images + "/inventory.img").c_str(), O_WRONLY | O_TRUNC));
    ASSERT_TRUE(fd);
    streamer.pump_all();  // between the truncation and the write: nothing to send, no fault
    ASSERT_EQ(::write(fd.get(), final_bytes.data(), final_bytes.size()),
              static_cast<ssize_t>(final_bytes.size()));
  }
  streamer.writer_done();
  auto done = streamer.finish();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].size(), final_bytes.size());
  EXPECT_EQ(host.files["images/inventory.img"], final_bytes);
  EXPECT_GE(host.on_disk["images/inventory.img"], 1);  // sent again once nothing writes it
}

}  // namespace
}  // namespace kcr::agent
