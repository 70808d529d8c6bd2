// The fleet's arithmetic: the behaviour mix (parsing, and its proportions at every prefix of the
// fleet) and the latency percentiles.
#include <gtest/gtest.h>

#include <map>

#include "estlab/fleet/fleet.hpp"

namespace estlab::fleet {
namespace {

TEST(BehaviourMix, ParsesWeightsAndNamesWhatIsWrong) {
  auto mix = BehaviourMix::parse("enroll=70,reenroll=20,basic=10");
  ASSERT_TRUE(mix.ok()) << mix.error().message;
  EXPECT_EQ(mix->to_string(), "enroll=70,reenroll=20,basic=10");
  auto bare = BehaviourMix::parse("enroll,no-eku");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->to_string(), "enroll=1,no-eku=1");
  EXPECT_EQ(BehaviourMix::parse("enroll=0,basic=3")->to_string(), "basic=3");

  EXPECT_NE(BehaviourMix::parse("enrol=3").error().message.find("unknown behaviour 'enrol'"), std::string::npos);
  EXPECT_NE(BehaviourMix::parse("enroll=x").error().message.find("whole number"), std::string::npos);
  EXPECT_NE(BehaviourMix::parse("enroll=1,,basic").error().message.find("empty entry"), std::string::npos);
  EXPECT_NE(BehaviourMix::parse("enroll=1,enroll=2").error().message.find("twice"), std::string::npos);
  EXPECT_NE(BehaviourMix::parse("enroll=0").error().message.find("weight 0"), std::string::npos);
  EXPECT_FALSE(BehaviourMix::parse("").ok());
}

TEST(BehaviourMix, EveryPrefixKeepsTheProportions) {
  const auto mix = BehaviourMix::parse("enroll=7,reenroll=2,basic=1").value();
  std::map<Behaviour, int> seen;
  for (std::uint64_t n = 0; n < 1000; ++n) {
    ++seen[mix.pick(n)];
    const double devices = static_cast<double>(n + 1);
    for (const auto& [b, w] : mix.weights)
      EXPECT_NEAR(seen[b], devices * w / 10.0, 1.0) << to_string(b) << " after " << n + 1 << " devices";
  }
  EXPECT_EQ(seen[Behaviour::enroll], 700);
  EXPECT_EQ(seen[Behaviour::reenroll], 200);
  EXPECT_EQ(seen[Behaviour::basic], 100);
  EXPECT_EQ(mix.pick(12345), mix.pick(12345)) << "deterministic";
}

TEST(Shard, IOverN) {
  EXPECT_EQ(parse_shard("0/4").value(), (std::pair<std::uint64_t, std::uint64_t>{0, 4}));
  EXPECT_EQ(parse_shard("3/4").value(), (std::pair<std::uint64_t, std::uint64_t>{3, 4}));
  for (const char* bad : {"4/4", "1/0", "x/2", "1", "", "-1/2", "1/2/3"}) EXPECT_FALSE(parse_shard(bad).ok()) << bad;
}

TEST(FleetReport, JsonRoundTripAndMergeOfShards) {
  FleetReport a;
  a.target = "t";
  a.profile = "rfc7030";
  a.options.mix = BehaviourMix::parse("enroll=3,reenroll=1").value();
  a.options.seed = 5;
  a.options.shard_count = 2;
  a.devices = 2;
  a.wall_s = 1.5;
  a.exchanges = {{Behaviour::enroll, "simpleenroll", 200, 12.5, 0.4, ""}, {Behaviour::reenroll, "simplereenroll", 0, 3, 1.2, "read: \"reset\""}};
  FleetReport b = from_json(to_json(a), "a.json");
  EXPECT_EQ(b.exchanges.size(), 2u);
  EXPECT_EQ(b.exchanges[1].behaviour, Behaviour::reenroll);
  EXPECT_EQ(b.exchanges[1].error, "read: \"reset\"");
  EXPECT_DOUBLE_EQ(b.exchanges[0].latency_ms, 12.5);
  EXPECT_EQ(b.options.mix.to_string(), "enroll=3,reenroll=1");
  b.options.shard_index = 1;
  b.wall_s = 2.0;
  const auto merged = merge({a, b});
  EXPECT_EQ(merged.devices, 4u);
  EXPECT_EQ(merged.exchanges.size(), 4u);
  EXPECT_DOUBLE_EQ(merged.wall_s, 2.0);
  EXPECT_THROW(merge({a, a}), ConfigError) << "a shard twice";
  FleetReport other = b;
  other.options.seed = 6;
  EXPECT_THROW(merge({a, other}), ConfigError) << "another fleet";
  EXPECT_THROW(from_json("{\"format\": \"x\"}", "x.json"), ConfigError);
  EXPECT_THROW(from_json("[", "y.json"), ConfigError);
}

TEST(LatencySummary, NearestRankPercentiles) {
  std::vector<double> ms;
  for (int i = 100; i >= 1; --i) ms.push_back(i);  // 1..100, unsorted
  const auto s = summarize(ms);
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.p50, 50);
  EXPECT_DOUBLE_EQ(s.p95, 95);
  EXPECT_DOUBLE_EQ(s.p99, 99);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  EXPECT_EQ(summarize({}).count, 0u);
  EXPECT_DOUBLE_EQ(summarize({7}).p99, 7);
}

TEST(FleetReport, OutcomesErrorsAndThroughputSeries) {
  FleetReport r;
  r.wall_s = 2.5;
  r.exchanges = {{Behaviour::enroll, "simpleenroll", 200, 10, 0.2, ""},
                 {Behaviour::enroll, "simpleenroll", 200, 30, 1.4, ""},
                 {Behaviour::revoked, "simpleenroll", 403, 5, 1.5, ""},
                 {Behaviour::enroll, "simpleenroll", 0, 15000, 2.4, "read: timed out"}};
  EXPECT_EQ(r.errors(), 1u);
  EXPECT_EQ(r.outcomes()["enroll simpleenroll"]["200"], 2u);
  EXPECT_EQ(r.outcomes()["enroll simpleenroll"]["error"], 1u);
  EXPECT_EQ(r.outcomes()["revoked simpleenroll"]["403"], 1u);
  EXPECT_EQ(r.errors_by_message()["read: timed out"], 1u);
  EXPECT_EQ(r.latency().count, 3u) << "only answered exchanges";
  EXPECT_EQ(r.throughput_per_second(), (std::vector<std::uint64_t>{1, 2, 1}));
  const auto json = to_json(r);
  EXPECT_NE(json.find("\"errors\": 1"), std::string::npos) << json;
  EXPECT_NE(to_html(r).find("id=\"histogram\""), std::string::npos);
}

TEST(FleetReport, TimeToApprovalCountsOnlyDevicesThatWaitedAndGotTheirCertificate) {
  FleetReport r;
  r.wall_s = 3;
  ExchangeRecord waiting{Behaviour::approval, "simpleenroll", 202, 4, 0.1, ""};
  ExchangeRecord approved{Behaviour::approval, "simpleenroll", 200, 5, 1.2, ""};
  approved.polls = 1;
  approved.waited_ms = 1100;
  ExchangeRecord approved_late = approved;
  approved_late.polls = 3;
  approved_late.waited_ms = 3300;
  ExchangeRecord direct{Behaviour::enroll, "simpleenroll", 200, 6, 0.3, ""};  // never waited: not an approval
  direct.waited_ms = 6;
  ExchangeRecord refused{Behaviour::approval, "simpleenroll", 403, 5, 2.0, ""};  // waited, then rejected
  refused.polls = 2;
  refused.waited_ms = 2000;
  ExchangeRecord coaps{Behaviour::approval, "simpleenroll", 204, 5, 2.5, ""};  // 2.04 Changed after 5.03
  coaps.polls = 1;
  coaps.waited_ms = 1500;
  ExchangeRecord still_waiting{Behaviour::approval, "simpleenroll", 202, 5, 2.6, ""};  // a later poll, still 202
  still_waiting.polls = 1;
  still_waiting.waited_ms = 1000;
  r.exchanges = {waiting, approved, approved_late, direct, refused, coaps, still_waiting};
  const auto t = r.time_to_approval();
  EXPECT_EQ(t.count, 3u);
  EXPECT_DOUBLE_EQ(t.p50, 1500);
  EXPECT_DOUBLE_EQ(t.max, 3300);
  EXPECT_EQ(r.approval_polls(), 5u);
  r.options.transport = Transport::coaps;
  r.options.mix = BehaviourMix::parse("approval=1,enroll=1").value();
  const FleetReport back = from_json(to_json(r), "r.json");
  EXPECT_EQ(back.options.transport, Transport::coaps);
  ASSERT_EQ(back.exchanges.size(), 7u);
  EXPECT_EQ(back.exchanges[2].polls, 3);
  EXPECT_DOUBLE_EQ(back.exchanges[2].waited_ms, 3300);
  EXPECT_EQ(back.time_to_approval().count, 3u);
  EXPECT_NE(to_text(r).find("time to approval"), std::string::npos);
  EXPECT_NE(to_html(r).find("id=\"time-to-approval\""), std::string::npos);
  EXPECT_EQ(BehaviourMix::parse("approval=2,enroll").value().to_string(), "approval=2,enroll=1");
}

}  // namespace
}  // namespace estlab::fleet
