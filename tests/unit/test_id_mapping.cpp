#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/id_mapping.hpp"

using namespace kcr::core;

namespace {

google::protobuf::RepeatedPtrField<kcr::proto::IdMapping> maps(
    std::initializer_list<const char*> lines) {
  google::protobuf::RepeatedPtrField<kcr::proto::IdMapping> out;
  for (const char* l : lines) *out.Add() = parse_id_mapping(l, "--uidmap");
  return out;
}

std::string error_of(std::initializer_list<const char*> lines) {
  try {
    validate_id_maps(maps(lines), "uid map");
  } catch (const kcr::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(IdMapping, ParsesPodmansWords) {
  auto m = parse_id_mapping("0:100000:65536", "--uidmap");
  EXPECT_EQ(m.container_id(), 0u);
  EXPECT_EQ(m.host_id(), 100000u);
  EXPECT_EQ(m.size(), 65536u);
  EXPECT_EQ(id_map_text(maps({"0:100000:65536", "65536:1000:1"})),
            "0 100000 65536\n65536 1000 1\n");
  EXPECT_EQ(host_id_of_root(maps({"1:5:1", "0:100000:1"})), 100000u);
}

TEST(IdMapping, RefusesWhatIsNotThreeNumbers) {
  for (const char* bad : {"", "0", "0:1", "0:1:", ":1:1", "0:1:2:3", "a:1:1", "0:-1:1",
                          "0:1:4294967296", " 0:1:1", "0:1:1 "}) {
    EXPECT_THROW(parse_id_mapping(bad, "--uidmap"), kcr::Error) << "'" << bad << "'";
  }
  try {
    parse_id_mapping("0:x:1", "--gidmap");
    FAIL();
  } catch (const kcr::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--gidmap '0:x:1'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("CONTAINER_ID:HOST_ID:SIZE"), std::string::npos);
  }
}

TEST(IdMapping, RefusesMapsTheKernelOrTheInitWouldRefuse) {
  EXPECT_EQ(error_of({"0:100000:65536"}), "");
  EXPECT_EQ(error_of({"0:0:1", "1:100001:1000"}), "");
  EXPECT_NE(error_of({"1:100000:65536"}).find("does not map container id 0"), std::string::npos);
  EXPECT_NE(error_of({"0:1:0"}).find("maps no ids"), std::string::npos);
  EXPECT_NE(error_of({"0:4294967295:2"}).find("runs past"), std::string::npos);
  EXPECT_NE(error_of({"0:100:10", "5:200:10"}).find("overlap"), std::string::npos);
  EXPECT_NE(error_of({"0:100:10", "20:105:10"}).find("overlap"), std::string::npos);
  EXPECT_NE(error_of({"0:0:1", "1:1:1", "2:2:1", "3:3:1", "4:4:1", "5:5:1"}).find("6 lines"),
            std::string::npos);
  google::protobuf::RepeatedPtrField<kcr::proto::IdMapping> none;
  EXPECT_THROW(validate_id_maps(none, "uid map"), kcr::Error);
}
