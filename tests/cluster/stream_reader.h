// Reading the whole events stream back in a test: every event of every message, by
// (sensor, seq), each with the subject it was published on.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "aggregator/cluster/jetstream.h"
#include "aggregator/cluster/stream_sink.h"

namespace tripline::testing {

struct StreamedEvent {
  std::string subject;
  Event event;
};
using StreamContents = std::map<std::pair<std::string, uint64_t>, std::vector<StreamedEvent>>;

// Reads the events stream through a new durable consumer `durable` until `expect` distinct
// events were seen or nothing more comes. A message id must match the events it carries.
inline StreamContents ReadEventsStream(cluster::JetStream& js, const std::string& durable,
                                       size_t expect) {
  StreamContents got;
  auto c = js.Consume({cluster::kEventsStream, durable, "tl.ev.>", 30000, 65536});
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  if (!c.ok()) return got;
  for (int round = 0; round < 100 && got.size() < expect; ++round) {
    auto batch = (*c)->Fetch(1000, 1000);
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok()) break;
    for (const cluster::Delivered& d : *batch) {
      auto m = cluster::DecodePartitionBatch(d.data);
      EXPECT_TRUE(m.ok()) << d.id << ": " << m.status().ToString();
      if (!m.ok()) continue;
      EXPECT_EQ(d.id,
                cluster::BatchMessageId(m->sensor_id, m->events.front().seq, m->events.back().seq));
      for (Event& e : m->events) {
        got[{m->sensor_id, e.seq}].push_back({d.subject, std::move(e)});
      }
    }
    EXPECT_TRUE((*c)->AckAll().ok());
  }
  return got;
}

}  // namespace tripline::testing
