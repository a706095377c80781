// Aggregator memory with many connected sensors: one process opens --streams bidi ingest
// streams over --channels connections to the real tripline-aggregator, each says hello and
// stores one batch, and all stay open while the aggregator's RSS is read from /proc.
//
//   streams_rss_bench [--streams 1000] [--channels 8] [--batch 16]
#include <cstdio>

#include "bench/aggregator/bench_support.h"
#include "tests/aggregator/test_support.h"

namespace tripline {
namespace {

struct Stream {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::IngestRequest, v1::IngestAck>> rw;
};

int Main(int argc, char** argv) {
  const bench::Flags flags(argc, argv);
  const int n_streams = static_cast<int>(flags.GetInt("streams", 1000));
  const int n_channels = static_cast<int>(flags.GetInt("channels", 8));
  const int batch = static_cast<int>(flags.GetInt("batch", 16));
  testing::TempDir dir;
  // Every stream comes from this one process (one address): lift the per-peer bound.
  bench::AggregatorProcess agg(dir.Sub("data"),
                               {"--max-streams-per-peer", std::to_string(n_streams)});
  const int64_t idle_kb = agg.RssKb();

  std::vector<std::unique_ptr<v1::Ingest::Stub>> stubs;
  for (int c = 0; c < n_channels; ++c) {
    grpc::ChannelArguments args;
    // Distinct arguments give each channel its own connection instead of a shared one.
    args.SetInt("tripline.bench.channel", c);
    stubs.push_back(v1::Ingest::NewStub(
        grpc::CreateCustomChannel(agg.address(), grpc::InsecureChannelCredentials(), args)));
  }
  const auto events = testing::SyntheticEvents(static_cast<size_t>(batch));
  std::vector<std::unique_ptr<Stream>> streams;
  const double t0 = bench::NowSeconds();
  for (int i = 0; i < n_streams; ++i) {
    auto s = std::make_unique<Stream>();
    s->rw = stubs[i % n_channels]->Stream(&s->context);
    const std::string id = "sim-sensor-" + std::to_string(i);
    v1::IngestAck ack;
    if (!s->rw->Write(testing::HelloRequest(id)) || !s->rw->Read(&ack) ||
        !s->rw->Write(testing::BatchRequest(id, 1, events)) || !s->rw->Read(&ack) ||
        ack.durable_seq() != static_cast<uint64_t>(batch)) {
      std::fprintf(stderr, "stream %d failed\n", i);
      return 1;
    }
    streams.push_back(std::move(s));
  }
  const double setup = bench::NowSeconds() - t0;
  const int64_t loaded_kb = agg.RssKb();
  std::printf("streams_rss_bench: %d streams over %d channels, %d events each\n", n_streams,
              n_channels, batch);
  std::printf("setup (hello + one batch per stream): %.2f s\n", setup);
  std::printf(
      "aggregator RSS idle: %.1f MiB; with %d open streams: %.1f MiB (peak %.1f MiB); "
      "%.1f KiB per stream\n",
      idle_kb / 1024.0, n_streams, loaded_kb / 1024.0, agg.PeakRssKb() / 1024.0,
      static_cast<double>(loaded_kb - idle_kb) / n_streams);
  for (auto& s : streams) {
    s->rw->WritesDone();
    v1::IngestAck ack;
    while (s->rw->Read(&ack)) {
    }
    s->rw->Finish();
  }
  return 0;
}

}  // namespace
}  // namespace tripline

int main(int argc, char** argv) { return tripline::Main(argc, argv); }
