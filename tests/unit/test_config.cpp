#include <gtest/gtest.h>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/json.hpp"
#include "core/names.hpp"
#include "core/signals.hpp"

using namespace kcr::core;

TEST(Config, ParsesEveryKnownSetting) {
  Config c = parse_config(
      "state_dir: /s\ncache_dir: /c\ndata_dir: /d\nqemu: /q\nimage: img\nmemory: 1G\ncpus: 2\n"
      "boot_timeout: 30\naccel: tcg\n",
      "t.yaml", Config{});
  EXPECT_EQ(c.state_dir, "/s");
  EXPECT_EQ(c.cache_dir, "/c");
  EXPECT_EQ(c.data_dir, "/d");
  EXPECT_EQ(c.qemu, "/q");
  EXPECT_EQ(c.image, "img");
  EXPECT_EQ(c.memory_mib, 1024u);
  EXPECT_EQ(c.cpus, 2u);
  EXPECT_EQ(c.boot_timeout_s, 30u);
  EXPECT_EQ(c.accel, "tcg");
}

TEST(Config, EmptyDocumentKeepsDefaults) {
  Config base;
  base.memory_mib = 777;
  EXPECT_EQ(parse_config("", "t.yaml", base).memory_mib, 777u);
}

TEST(Config, ErrorsNameFileLineAndKey) {
  try {
    parse_config("memory: [1\n", "bad.yaml", Config{});
    FAIL() << "no error";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.yaml: line"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), kcr::ExitCode::usage);
  }
  try {
    parse_config("memroy: 1G\n", "t.yaml", Config{});
    FAIL() << "no error";
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown setting 'memroy'"), std::string::npos);
  }
  EXPECT_THROW(parse_config("cpus: many\n", "t.yaml", Config{}), kcr::Error);
  EXPECT_THROW(parse_config("cpus: 0\n", "t.yaml", Config{}), kcr::Error);
  EXPECT_THROW(parse_config("accel: xen\n", "t.yaml", Config{}), kcr::Error);
  EXPECT_THROW(parse_config("- a\n- b\n", "t.yaml", Config{}), kcr::Error);
  EXPECT_THROW(parse_config("qemu: [a, b]\n", "t.yaml", Config{}), kcr::Error);
}

TEST(Config, MemorySizes) {
  EXPECT_EQ(parse_memory_mib("512M"), 512u);
  EXPECT_EQ(parse_memory_mib("512"), 512u);
  EXPECT_EQ(parse_memory_mib("2G"), 2048u);
  EXPECT_EQ(parse_memory_mib("1GiB"), 1024u);
  EXPECT_THROW(parse_memory_mib("12X"), kcr::Error);
  EXPECT_THROW(parse_memory_mib(""), kcr::Error);
  EXPECT_THROW(parse_memory_mib("G"), kcr::Error);
  EXPECT_THROW(parse_memory_mib("64M"), kcr::Error);  // too small to boot
  EXPECT_THROW(parse_memory_mib("99999999999999999999"), kcr::Error);
}

TEST(Names, AcceptsPlainNamesAndRejectsPathsAndOddities) {
  for (const char* ok : {"demo", "a", "web-1", "x_y.z", "0abc"})
    EXPECT_TRUE(is_valid_name(ok)) << ok;
  for (const char* bad : {"", ".", "..", "a/b", "../x", "-x", ".hidden", "a b", "a\nb", "é"}) {
    EXPECT_FALSE(is_valid_name(bad)) << bad;
  }
  EXPECT_FALSE(is_valid_name(std::string(65, 'a')));
  EXPECT_THROW(validate_name("VM name", "a/b"), kcr::Error);
}

TEST(Signals, NamesAndNumbers) {
  EXPECT_EQ(parse_signal("TERM"), 15);
  EXPECT_EQ(parse_signal("sigkill"), 9);
  EXPECT_EQ(parse_signal("SIGUSR1"), 10);
  EXPECT_EQ(parse_signal("2"), 2);
  EXPECT_THROW(parse_signal("NOPE"), kcr::Error);
  EXPECT_THROW(parse_signal("0"), kcr::Error);
  EXPECT_THROW(parse_signal("65"), kcr::Error);
  EXPECT_THROW(parse_signal("123456789012"), kcr::Error);
  EXPECT_EQ(signal_name(15), "TERM");
  EXPECT_EQ(signal_name(40), "SIG40");
}

TEST(Json, EscapesAndKeepsOrder) {
  auto j = Json::object();
  j.set("b", 1).set("a", "x\"y\n\x01").set("n", nullptr).set("t", true).set("f", 1.5);
  auto arr = Json::array();
  arr.push(1).push("s");
  j.set("arr", arr);
  EXPECT_EQ(j.dump(), R"({"b":1,"a":"x\"y\n\u0001","n":null,"t":true,"f":1.5,"arr":[1,"s"]})");
}

// Found by tests/fuzz/fuzz_config.cpp: a key that is a sequence or a mapping escaped as a
// yaml-cpp exception instead of a usage error naming the file.
TEST(Config, ASettingNameThatIsNotAWordIsAUsageError) {
  for (const char* text : {"[a]: 1\n", "{a: 1}: 2\n", "? [x, y]\n: 3\n"}) {
    try {
      parse_config(text, "t.yaml", Config{});
      FAIL() << "no error for " << text;
    } catch (const kcr::Error& e) {
      EXPECT_NE(std::string(e.what()).find("t.yaml: line 1"), std::string::npos) << e.what();
      EXPECT_EQ(e.code(), kcr::ExitCode::usage);
    }
  }
}

TEST(Config, MemoryLimitsReadAsPodmanDoes) {
  EXPECT_EQ(parse_memory_limit("256m", "--memory"), uint64_t{256} << 20);
  EXPECT_EQ(parse_memory_limit("1G", "--memory"), uint64_t{1} << 30);
  EXPECT_EQ(parse_memory_limit("8192k", "--memory"), uint64_t{8} << 20);
  EXPECT_EQ(parse_memory_limit("4194304", "--memory"), uint64_t{4} << 20);
  for (const char* bad : {"", "m", "1m", "12mb", "-5m", "10x", "99999999999999999g"}) {
    EXPECT_THROW(parse_memory_limit(bad, "--memory"), kcr::Error) << bad;
  }
  try {
    parse_memory_limit("lots", "--memory");
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--memory 'lots' is not a memory size"),
              std::string::npos);
  }
}
