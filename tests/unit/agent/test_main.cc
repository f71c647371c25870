// Unit-test main for the agent: set up the process like AgentMain does (SIGCHLD blocked before
// any thread, so only the reaper's signalfd sees it; SIGPIPE ignored), then run the tests.
#include <signal.h>

#include <gtest/gtest.h>

#include "agent/reaper.h"

int main(int argc, char** argv) {
  if (!cocoon::agent::Reaper::BlockChildSignal().ok()) return 1;
  ::signal(SIGPIPE, SIG_IGN);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
