#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace kcr::core;

namespace {

using kcr::test::TempDir;

// The message of the kcr::Error that F throws; fails the test when it throws none.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const kcr::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no kcr::Error thrown";
  return {};
}

}  // namespace

TEST(ReadFile, ReadsTheWholeFile) {
  TempDir tmp;
  std::string big(200 * 1024, 'x');
  big += "end";
  write_file_atomic(tmp.path() + "/f", big);
  EXPECT_EQ(read_file(tmp.path() + "/f"), big);
  EXPECT_EQ(read_file(tmp.path() + "/f", big.size()), big);
}

TEST(ReadFile, MissingFileThrowsNamingThePath) {
  TempDir tmp;
  std::string path = tmp.path() + "/missing";
  std::string message = error_of([&] { read_file(path); });
  EXPECT_NE(message.find("cannot read " + path), std::string::npos) << message;
  EXPECT_NE(message.find(std::strerror(ENOENT)), std::string::npos) << message;
}

TEST(ReadFile, LargerThanMaxThrows) {
  TempDir tmp;
  write_file_atomic(tmp.path() + "/f", "0123456789");
  std::string message = error_of([&] { read_file(tmp.path() + "/f", 9); });
  EXPECT_NE(message.find(tmp.path() + "/f"), std::string::npos) << message;
}

TEST(TryReadFile, TruncatesToMax) {
  TempDir tmp;
  write_file_atomic(tmp.path() + "/f", "0123456789");
  EXPECT_EQ(try_read_file(tmp.path() + "/f", 4), "0123");
  EXPECT_EQ(try_read_file(tmp.path() + "/f"), "0123456789");
  EXPECT_EQ(try_read_file(tmp.path() + "/f", 0), "");
}

TEST(TryReadFile, MissingOrUnreadableIsNullopt) {
  TempDir tmp;
  EXPECT_EQ(try_read_file(tmp.path() + "/missing"), std::nullopt);
  EXPECT_EQ(try_read_file(tmp.path()), std::nullopt);  // a directory: read(2) fails
}

TEST(TryReadFile, ReadsProcFilesThatReportNoSize) {
  auto status = try_read_file("/proc/self/status");
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(status->find("Pid:"), std::string::npos);
}

TEST(WriteFileAtomic, ReplacesContentAndLeavesNoTempFile) {
  TempDir tmp;
  std::string path = tmp.path() + "/state";
  write_file_atomic(path, "first version, longer than the second\n");
  write_file_atomic(path, "second\n");
  EXPECT_EQ(read_file(path), "second\n");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"state"});
}

TEST(WriteFileAtomic, SetsTheMode) {
  TempDir tmp;
  struct stat st {};
  write_file_atomic(tmp.path() + "/private", "x");
  ASSERT_EQ(::stat((tmp.path() + "/private").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600U);
  write_file_atomic(tmp.path() + "/public", "x", 0644);
  ASSERT_EQ(::stat((tmp.path() + "/public").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644U);
}

TEST(WriteFileAtomic, MissingDirectoryThrows) {
  TempDir tmp;
  std::string path = tmp.path() + "/no/such/dir/file";
  std::string message = error_of([&] { write_file_atomic(path, "x"); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(tmp.path() + "/no"));
}

TEST(WriteFileAtomic, FailedRenameRemovesTheTempFile) {
  TempDir tmp;
  fs::create_directories(tmp.path() + "/target/child");  // rename(2) cannot replace it
  EXPECT_THROW(write_file_atomic(tmp.path() + "/target", "x"), kcr::Error);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(tmp.path())) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"target"});
}

TEST(ConnectUnix, ConnectsToAListeningSocket) {
  TempDir tmp;
  std::string path = tmp.path() + "/s.sock";
  kcr::UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, path.c_str());
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);

  kcr::UniqueFd client = connect_unix(path, "test server");
  ASSERT_TRUE(client);
  kcr::UniqueFd server(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server);
  ASSERT_EQ(::write(client.get(), "hi", 2), 2);
  char buf[2];
  ASSERT_EQ(::read(server.get(), buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
  EXPECT_NE(::fcntl(client.get(), F_GETFD) & FD_CLOEXEC, 0);
}

TEST(ConnectUnix, MissingPathThrowsNamingWhatAndWhere) {
  TempDir tmp;
  std::string path = tmp.path() + "/missing.sock";
  std::string message = error_of([&] { connect_unix(path, "the agent"); });
  EXPECT_NE(message.find("connect to the agent (" + path + ")"), std::string::npos) << message;
}

TEST(ConnectUnix, RejectsTooLongPaths) {
  std::string path = "/tmp/" + std::string(sizeof(sockaddr_un::sun_path), 'x');
  std::string message = error_of([&] { connect_unix(path); });
  EXPECT_NE(message.find("connect to socket (" + path + ")"), std::string::npos) << message;
}

TEST(MsSince, CountsSteadyClockMilliseconds) {
  auto start = std::chrono::steady_clock::now();
  EXPECT_LT(ms_since(start), 1000U);
  EXPECT_GE(ms_since(start - std::chrono::milliseconds(1500)), 1500U);
}

TEST(Trim, StripsWhiteSpaceAtBothEnds) {
  EXPECT_EQ(trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(trim("\v\fx\f\v"), "x");
  EXPECT_EQ(trim("plain"), "plain");
  EXPECT_EQ(trim(" \n\t "), "");
  EXPECT_EQ(trim(""), "");
}

TEST(WriteAll, WritesEverythingAndSaysWhenItCannot) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  EXPECT_TRUE(kcr::core::write_all(p[1], "hello"));
  char buf[8] = {};
  EXPECT_EQ(::read(p[0], buf, sizeof buf), 5);
  EXPECT_STREQ(buf, "hello");
  ::close(p[0]);
  ::signal(SIGPIPE, SIG_IGN);
  EXPECT_FALSE(kcr::core::write_all(p[1], "nobody reads"));
  ::close(p[1]);
}
