// kcr cp's host side: the places it parses, and a guest that sends unsafe
// names, sizes or orders gets nothing written outside the target, and
// nothing at all when the copy fails.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/error.hpp"
#include "fakes.hpp"
#include "temp_dir.hpp"
#include "vm/copy.hpp"

using namespace kcr;
using kcr::test::TempDir;
namespace fs = std::filesystem;

namespace {

// An agent that answers every copy_out with the given parts: a stat with the
// first entry, the copy itself with all of them.
class ScriptedAgent final : public vm::AgentChannel {
 public:
  explicit ScriptedAgent(std::vector<proto::Response> parts) : m_parts(std::move(parts)) {}
  proto::Hello wait_hello(std::chrono::milliseconds, const std::function<void()>&) override {
    return {};
  }
  proto::Response call(proto::Request, std::chrono::milliseconds) override {
    proto::Response r;
    r.mutable_ok();
    return r;
  }
  proto::Response call_streaming(
      proto::Request req, std::chrono::milliseconds,
      const std::function<void(const proto::Response&)>& on_part) override {
    if (req.copy_out().stat_only()) {
      if (!m_parts.empty()) on_part(m_parts.front());
    } else {
      for (const auto& p : m_parts) on_part(p);
    }
    proto::Response r;
    r.mutable_copy_out()->set_exists(!m_parts.empty());
    return r;
  }
  uint64_t send(proto::Request) override { return 0; }
  proto::Response await(uint64_t, std::chrono::milliseconds) override { return {}; }

 private:
  std::vector<proto::Response> m_parts;
};

proto::Response entry(const std::string& path, proto::CopyKind kind, uint64_t size = 0,
                      uint32_t mode = 0644, const std::string& target = {}) {
  proto::Response r;
  auto* e = r.mutable_copy_entry();
  e->set_path(path);
  e->set_kind(kind);
  e->set_size(size);
  e->set_mode(mode);
  e->set_target(target);
  return r;
}

proto::Response chunk(const std::string& path, uint64_t offset, const std::string& data) {
  proto::Response r;
  auto* c = r.mutable_chunk();
  c->set_path(path);
  c->set_offset(offset);
  c->set_data(data);
  return r;
}

struct Copy {
  TempDir t;
  test::FakeBackend backend;

  std::string run(std::vector<proto::Response> parts, const std::string& dest) {
    vm::VmInfo info;
    info.name = "demo";
    vm::VmSession s(info, backend, std::make_unique<ScriptedAgent>(std::move(parts)), {});
    try {
      vm::copy_from_workload(s, "w", "/tmp/out", dest);
    } catch (const Error& e) {
      return e.what();
    }
    return "copied";
  }
  // Every entry under the temp dir, relative.
  std::vector<std::string> left() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(t.path())) {
      out.push_back(fs::relative(e.path(), t.path()).string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

}  // namespace

TEST(CopyPlace, ParsesPodmanStylePlaces) {
  auto p = vm::parse_copy_place("demo:web:/usr/local/bin/tool");
  EXPECT_EQ(p.vm, "demo");
  EXPECT_EQ(p.workload, "web");
  EXPECT_EQ(p.path, "/usr/local/bin/tool");
  EXPECT_FALSE(vm::parse_copy_place("./a:b:c").in_workload());
  EXPECT_FALSE(vm::parse_copy_place("/tmp/x:y:z").in_workload());
  EXPECT_FALSE(vm::parse_copy_place("plain").in_workload());
  EXPECT_THROW(vm::parse_copy_place("demo:web:relative"), Error);
  EXPECT_THROW(vm::parse_copy_place("demo:/tmp"), Error);
  EXPECT_THROW(vm::parse_copy_place("bad name:web:/x"), Error);
}

TEST(CopyPlace, SafeRelativePaths) {
  EXPECT_TRUE(vm::is_safe_relative_path(""));
  EXPECT_TRUE(vm::is_safe_relative_path("a/b.c"));
  const std::vector<std::string> bad = {
      "/etc", "..", "a/../b", "a//b", "./a", "a/", std::string(300, 'x')};
  for (const auto& b : bad) EXPECT_FALSE(vm::is_safe_relative_path(b)) << b;
  EXPECT_FALSE(vm::is_safe_relative_path(std::string("a\0b", 3)));
}

TEST(CopyFromGuest, AWellBehavedTreeArrivesWithModesAndNoSetId) {
  Copy c;
  std::string dest = c.t.path() + "/out";
  auto why =
      c.run({entry("", proto::COPY_DIRECTORY, 0, 0750), entry("f", proto::COPY_FILE, 5, 04755),
             chunk("f", 0, "hel"), chunk("f", 3, "lo"),
             entry("l", proto::COPY_SYMLINK, 0, 0777, "../../etc/passwd")},
            dest);
  ASSERT_EQ(why, "copied");
  EXPECT_EQ(c.left(), (std::vector<std::string>{"out", "out/f", "out/l"}));
  struct stat st {};
  ASSERT_EQ(::stat((dest + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);  // set-uid dropped
  ASSERT_EQ(::stat(dest.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(fs::read_symlink(dest + "/l"), "../../etc/passwd");  // a link, never followed
}

TEST(CopyFromGuest, AHostileGuestWritesNothing) {
  const std::vector<std::vector<proto::Response>> attacks = {
      {entry("", proto::COPY_DIRECTORY), entry("../escape", proto::COPY_FILE, 1),
       chunk("../escape", 0, "x")},
      {entry("", proto::COPY_DIRECTORY), entry("/etc/x", proto::COPY_FILE)},
      // through a link it made: the parent must be a directory of the copy
      {entry("", proto::COPY_DIRECTORY), entry("l", proto::COPY_SYMLINK, 0, 0777, "/"),
       entry("l/escape", proto::COPY_FILE)},
      {entry("", proto::COPY_FILE, 2), chunk("", 0, "too much")},
      {entry("", proto::COPY_FILE, 4), chunk("", 1, "late")},
      {entry("", proto::COPY_FILE, 4), chunk("", 0, "ab")},  // stops short
      {entry("", proto::COPY_DIRECTORY), entry("", proto::COPY_DIRECTORY)},
      {entry("", proto::COPY_FILE, uint64_t{1} << 50)},
  };
  for (std::size_t i = 0; i < attacks.size(); ++i) {
    Copy c;
    auto why = c.run(attacks[i], c.t.path() + "/out");
    EXPECT_NE(why, "copied") << "attack " << i;
    EXPECT_TRUE(c.left().empty()) << "attack " << i << " left " << c.left().size() << ": " << why;
  }
}
