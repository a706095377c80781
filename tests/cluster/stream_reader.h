// Reading the whole events stream back in a test: every event of every message, by
// (sensor, seq), each with the subject it was published on; copies of routed connections
// (PartitionEvents::copies) apart.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
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
// Copies go to `copies` when given.
inline StreamContents ReadEventsStream(cluster::JetStream& js, const std::string& durable,
                                       size_t expect, StreamContents* copies = nullptr) {
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
      std::string id =
          cluster::BatchMessageId(m->sensor_id, m->events.front().seq, m->events.back().seq);
      if (!m->copies.empty()) {
        id += "+" + d.subject.substr(std::string_view(cluster::kEventsSubjectPrefix).size());
      }
      EXPECT_EQ(d.id, id);
      for (Event& e : m->events) {
        const bool copy = std::binary_search(m->copies.begin(), m->copies.end(), e.seq);
        if (copy && copies == nullptr) continue;
        (copy ? *copies : got)[{m->sensor_id, e.seq}].push_back({d.subject, std::move(e)});
      }
    }
    EXPECT_TRUE((*c)->AckAll().ok());
  }
  return got;
}

}  // namespace tripline::testing
