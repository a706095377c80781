// Every message of the tripline.v1 wire contract survives serialize -> parse unchanged.
// Messages are filled by reflection, so a field added later is covered without edits here.
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>

#include "tripline/v1/config.pb.h"
#include "tripline/v1/event.pb.h"
#include "tripline/v1/ingest.pb.h"
#include "tripline/v1/query.pb.h"
#include "tripline/v1/response.pb.h"

namespace tripline {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// Sets every field (and, for oneofs, the field `oneof_pick` modulo the oneof's size) to a
// value derived from `seed`, recursing into sub-messages down to `depth`.
void Fill(Message* m, int seed, int depth, int oneof_pick) {
  const Descriptor* d = m->GetDescriptor();
  const Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (const auto* oneof = f->real_containing_oneof()) {
      if (oneof->field(oneof_pick % oneof->field_count()) != f) continue;
    }
    const int v = seed * 31 + i + 1;
    const int reps = f->is_repeated() ? 2 : 1;
    for (int k = 0; k < reps; ++k) {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_INT32:
          f->is_repeated() ? r->AddInt32(m, f, -v - k) : r->SetInt32(m, f, -v);
          break;
        case FieldDescriptor::CPPTYPE_INT64:
          f->is_repeated() ? r->AddInt64(m, f, -v * 1000000007LL - k)
                           : r->SetInt64(m, f, -v * 1000000007LL);
          break;
        case FieldDescriptor::CPPTYPE_UINT32:
          f->is_repeated() ? r->AddUInt32(m, f, v + k) : r->SetUInt32(m, f, v);
          break;
        case FieldDescriptor::CPPTYPE_UINT64:
          f->is_repeated() ? r->AddUInt64(m, f, v * 4000000007ULL + k)
                           : r->SetUInt64(m, f, v * 4000000007ULL);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          f->is_repeated() ? r->AddDouble(m, f, v + 0.25 + k) : r->SetDouble(m, f, v + 0.25);
          break;
        case FieldDescriptor::CPPTYPE_FLOAT:
          f->is_repeated() ? r->AddFloat(m, f, v + 0.5f + k) : r->SetFloat(m, f, v + 0.5f);
          break;
        case FieldDescriptor::CPPTYPE_BOOL:
          f->is_repeated() ? r->AddBool(m, f, k == 0) : r->SetBool(m, f, true);
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const auto* e = f->enum_type();
          const auto* value = e->value((v + k) % e->value_count());
          f->is_repeated() ? r->AddEnum(m, f, value) : r->SetEnum(m, f, value);
          break;
        }
        case FieldDescriptor::CPPTYPE_STRING: {
          const std::string s = f->name() + "-" + std::to_string(v + k) + "-\xc3\xa9";
          f->is_repeated() ? r->AddString(m, f, s) : r->SetString(m, f, s);
          break;
        }
        case FieldDescriptor::CPPTYPE_MESSAGE:
          if (depth > 0) {
            Message* sub = f->is_repeated() ? r->AddMessage(m, f) : r->MutableMessage(m, f);
            Fill(sub, v + k, depth - 1, oneof_pick);
          }
          break;
      }
    }
  }
}

int MaxOneofSize(const Descriptor* d) {
  int n = 1;
  for (int i = 0; i < d->oneof_decl_count(); ++i) {
    n = std::max(n, d->oneof_decl(i)->field_count());
  }
  return n;
}

TEST(ProtoRoundTripTest, EveryMessageOfEveryFile) {
  // Touch one message of each file so the generated descriptors are registered.
  const std::vector<const google::protobuf::FileDescriptor*> files = {
      v1::Event::descriptor()->file(), v1::IngestRequest::descriptor()->file(),
      v1::Incident::descriptor()->file(), v1::Action::descriptor()->file(),
      v1::SensorConfig::descriptor()->file()};
  google::protobuf::DynamicMessageFactory factory;
  std::set<std::string> seen;
  std::vector<const Descriptor*> todo;
  for (const auto* file : files) {
    for (int i = 0; i < file->message_type_count(); ++i) todo.push_back(file->message_type(i));
  }
  while (!todo.empty()) {
    const Descriptor* d = todo.back();
    todo.pop_back();
    if (!seen.insert(d->full_name()).second) continue;
    for (int i = 0; i < d->nested_type_count(); ++i) todo.push_back(d->nested_type(i));
    for (int pick = 0; pick < MaxOneofSize(d); ++pick) {
      std::unique_ptr<Message> original(factory.GetPrototype(d)->New());
      Fill(original.get(), 7 + pick, 3, pick);
      std::string bytes;
      ASSERT_TRUE(original->SerializeToString(&bytes)) << d->full_name();
      std::unique_ptr<Message> parsed(factory.GetPrototype(d)->New());
      ASSERT_TRUE(parsed->ParseFromString(bytes)) << d->full_name();
      std::string diff;
      google::protobuf::util::MessageDifferencer differ;
      differ.ReportDifferencesToString(&diff);
      EXPECT_TRUE(differ.Compare(*original, *parsed)) << d->full_name() << ": " << diff;
      if (d->field_count() > 0) {
        EXPECT_FALSE(bytes.empty()) << d->full_name() << " filled nothing";
      }
    }
  }
  // The contract's messages are all there.
  for (const char* name :
       {"tripline.v1.Event", "tripline.v1.EventBatch", "tripline.v1.IngestAck",
        "tripline.v1.LoginEvent", "tripline.v1.FileOpenEvent", "tripline.v1.ExecEvent",
        "tripline.v1.NetConnectEvent", "tripline.v1.PostureSnapshot", "tripline.v1.SensorHealth",
        "tripline.v1.Incident", "tripline.v1.Action", "tripline.v1.Stats",
        "tripline.v1.SensorConfig", "tripline.v1.AggregatorConfig"}) {
    EXPECT_TRUE(seen.count(name)) << name;
  }
  EXPECT_GE(seen.size(), 40u);
}

TEST(ProtoRoundTripTest, ServicesHaveTheirShape) {
  const auto* ingest = v1::IngestRequest::descriptor()->file()->FindServiceByName("Ingest");
  ASSERT_NE(ingest, nullptr);
  const auto* stream = ingest->FindMethodByName("Stream");
  ASSERT_NE(stream, nullptr);
  EXPECT_TRUE(stream->client_streaming());
  EXPECT_TRUE(stream->server_streaming());
  const auto* query = v1::Incident::descriptor()->file()->FindServiceByName("Query");
  ASSERT_NE(query, nullptr);
  for (const char* m :
       {"ListIncidents", "GetIncident", "ListEvents", "GetBaseline", "GetAudit", "GetStats"}) {
    EXPECT_NE(query->FindMethodByName(m), nullptr) << m;
  }
  const auto* response = v1::Action::descriptor()->file()->FindServiceByName("Response");
  ASSERT_NE(response, nullptr);
  for (const char* m : {"Propose", "Approve", "Deny", "List"}) {
    EXPECT_NE(response->FindMethodByName(m), nullptr) << m;
  }
}

}  // namespace
}  // namespace tripline
