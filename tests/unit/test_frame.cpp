#include <gtest/gtest.h>

#include "core/error.hpp"
#include "core/frame.hpp"

using kcr::core::encode_frame;
using kcr::core::FrameDecoder;

TEST(Frame, RoundTripsSeveralFramesFedByteByByte) {
  std::string big(300, 'x');
  std::string stream = encode_frame("a") + encode_frame("") + encode_frame(big);
  FrameDecoder d;
  std::vector<std::string> got;
  for (char c : stream) {
    d.feed(std::string_view(&c, 1));
    while (auto f = d.next()) got.push_back(*f);
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], "a");
  EXPECT_EQ(got[1], "");
  EXPECT_EQ(got[2], big);
  EXPECT_FALSE(d.has_partial());
}

TEST(Frame, LengthPrefixIsAVarint) {
  std::string f = encode_frame(std::string(300, 'y'));
  ASSERT_GE(f.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(f[0]), 0xac);  // 300 = 0b10_0101100
  EXPECT_EQ(static_cast<unsigned char>(f[1]), 0x02);
  EXPECT_EQ(f.size(), 302u);
}

TEST(Frame, OversizedLengthIsRejectedBeforeThePayloadArrives) {
  FrameDecoder d(1024);
  d.feed(encode_frame(std::string(1025, 'z')).substr(0, 2));
  EXPECT_THROW(d.next(), kcr::Error);
}

TEST(Frame, HugeVarintIsRejected) {
  FrameDecoder d;
  d.feed(std::string(11, '\xff'));
  EXPECT_THROW(d.next(), kcr::Error);
}

TEST(Frame, TruncatedFrameWaitsForMoreAndReportsPartial) {
  FrameDecoder d;
  std::string f = encode_frame("hello world");
  d.feed(f.substr(0, 5));
  EXPECT_FALSE(d.next().has_value());
  EXPECT_TRUE(d.has_partial());
  d.feed(f.substr(5));
  auto got = d.next();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, "hello world");
}

#include "agent.pb.h"

TEST(Frame, SerializeFrameMatchesEncodeFrameAndRespectsTheLimit) {
  kcr::proto::Response r;
  r.set_id(7);
  r.mutable_chunk()->set_path("images/pages-1.img");
  r.mutable_chunk()->set_data(std::string(200000, 'q'));
  std::string payload;
  r.SerializeToString(&payload);
  EXPECT_EQ(kcr::core::serialize_frame(r), encode_frame(payload));
  EXPECT_EQ(kcr::core::serialize_frame(r, 1000), "");
}
