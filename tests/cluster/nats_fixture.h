// Starting a NATS cluster from a GoogleTest fixture.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "tests/cluster/nats_cluster.h"

namespace tripline::testing {

// For a fixture's SetUp: `n` servers started and accepting clients, or a skip (a failure
// under CI) where nats-server is not installed. Callers return when IsSkipped().
inline void StartNatsCluster(std::unique_ptr<NatsCluster>* out, int n = 3) {
  if (!NatsCluster::Installed()) GTEST_SKIP() << "nats-server is not installed";
  *out = std::make_unique<NatsCluster>(n);
  ASSERT_TRUE((*out)->started());
  ASSERT_TRUE((*out)->WaitReady()) << (*out)->Log(0);
}

}  // namespace tripline::testing
