#include <gtest/gtest.h>

#include "images/agent/link.hpp"

using namespace kcr::agent;

TEST(LinkClash, AFreshGuestHasNone) {
  EXPECT_FALSE(link_clash({{"lo", "127.0.0.1/8"}}, "eth0", "10.97.0.1/24", "").has_value());
}

TEST(LinkClash, ReplacingWhatKcrSetBeforeIsFine) {
  EXPECT_FALSE(link_clash({{"eth0", "10.97.0.1/24"}}, "eth0", "10.97.0.2/24", "10.97.0.1/24"));
  EXPECT_FALSE(link_clash({{"eth0", "10.97.0.2/24"}}, "eth0", "10.97.0.2/24", ""));
}

TEST(LinkClash, AnAddressAWorkloadGaveTheLinkInterfaceIsNamed) {
  auto c = link_clash({{"eth0", "192.168.7.2/24"}}, "eth0", "10.97.0.1/24", "");
  ASSERT_TRUE(c.has_value());
  EXPECT_NE(c->find("would replace address 192.168.7.2/24 of eth0"), std::string::npos) << *c;
}

TEST(LinkClash, TheLinksSubnetOnAnotherInterfaceIsNamed) {
  auto c = link_clash({{"eth1", "10.97.0.9/24"}}, "eth0", "10.97.0.1/24", "");
  ASSERT_TRUE(c.has_value());
  EXPECT_NE(c->find("subnet of eth1's 10.97.0.9/24"), std::string::npos) << *c;
  // Another subnet is fine.
  EXPECT_FALSE(link_clash({{"eth1", "10.98.0.9/24"}}, "eth0", "10.97.0.1/24", ""));
}

TEST(LinkClash, LoopbackIsNeverAClash) {
  EXPECT_FALSE(link_clash({{"lo", "10.97.0.9/24"}}, "eth0", "10.97.0.1/24", ""));
}

TEST(LinkClash, ALabelledAddressOfTheLinkInterfaceIsItsOwn) {
  auto c = link_clash({{"eth0:1", "192.168.7.2/24"}}, "eth0", "10.97.0.1/24", "");
  ASSERT_TRUE(c.has_value());
  EXPECT_NE(c->find("would replace address 192.168.7.2/24 of eth0:1"), std::string::npos) << *c;
}
