#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.hpp"
#include "core/fault.hpp"

using kcr::Error;
using kcr::core::agent_fault_point;
using kcr::core::fault_point;
using kcr::core::validate_agent_fault_spec;

TEST(Fault, AgentSpecNeedsKnownActionsAndPlainNames) {
  EXPECT_NO_THROW(validate_agent_fault_spec("checkpoint.agent-stream:enospc"));
  EXPECT_NO_THROW(validate_agent_fault_spec("restore.agent-put-file:eio,lazy.agent-stream:exit"));
  EXPECT_NO_THROW(validate_agent_fault_spec("restore.agent-before-criu:stall"));
  EXPECT_THROW(validate_agent_fault_spec("checkpoint.agent-stream"), Error);       // no action
  EXPECT_THROW(validate_agent_fault_spec("checkpoint.agent-stream:kill"), Error);  // host's
  EXPECT_THROW(validate_agent_fault_spec("a b:eio"), Error);  // would split the cmdline
  EXPECT_THROW(validate_agent_fault_spec("A.b:eio"), Error);
  EXPECT_THROW(validate_agent_fault_spec("x:eio,"), Error);  // an empty item
  EXPECT_THROW(validate_agent_fault_spec("init=/bin/sh:eio"), Error);
}

TEST(Fault, HostFailThrowsOnlyAtItsPoint) {
  ::setenv("KCR_FAULT", "other.point:fail,this.point:fail", 1);
  EXPECT_NO_THROW(fault_point("not.named"));
  try {
    fault_point("this.point");
    ADD_FAILURE() << "no throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "injected fault at this.point");
  }
  ::unsetenv("KCR_FAULT");
  EXPECT_NO_THROW(fault_point("this.point"));
}

TEST(Fault, KillQemuWithoutAnOpenVmGoesOn) {
  ::setenv("KCR_FAULT", "a.point:kill-qemu=dst", 1);
  EXPECT_NO_THROW(fault_point("a.point"));
  ::unsetenv("KCR_FAULT");
}

TEST(Fault, AgentPointsAreQuietWithoutKcrFaultOnTheCommandLine) {
  // The host's /proc/cmdline carries no kcr.fault=.
  EXPECT_EQ(agent_fault_point("checkpoint.agent-stream"), 0);
}
