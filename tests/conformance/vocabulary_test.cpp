#include "estlab/conformance/vocabulary.hpp"

#include <gtest/gtest.h>

#include <set>

namespace estlab::conformance {
namespace {

TEST(Vocabulary, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("tls13", "tls1.3"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("revoke", "revoke"), 0u);
}

TEST(Vocabulary, ClosestNameFindsTypos) {
  EXPECT_EQ(closest_name("tls13", feature_names()), "tls1.3");
  EXPECT_EQ(closest_name("serverkeygn", feature_names()), "serverkeygen");
  EXPECT_EQ(closest_name("full-cmc", feature_names()), "fullcmc");
  EXPECT_EQ(closest_name("manual_approval", feature_names()), "manual-approval");
  EXPECT_EQ(closest_name("device-revokd", role_names()), "device-revoked");
  EXPECT_EQ(closest_name("ra-oficer", role_names()), "ra-officer");
  EXPECT_EQ(closest_name("publish_crl", control_names()), "publish-crl");
  EXPECT_EQ(closest_name("revoke", control_names()), "revoke");  // exact
}

TEST(Vocabulary, ClosestNameIsEmptyWhenNothingIsClose) {
  EXPECT_EQ(closest_name("coffee", feature_names()), "");
  EXPECT_EQ(closest_name("x", control_names()), "");
  EXPECT_EQ(closest_name("device", role_names()), "");  // a captured identity name, not a typo
  EXPECT_EQ(closest_name("anything", {}), "");
  // Equally close to two names: no guess.
  EXPECT_EQ(closest_name("tls1.x", feature_names()), "");
}

TEST(Vocabulary, TablesHaveUniqueNamesAndMeanings) {
  for (const auto& names : {role_names(), feature_names(), control_names()}) {
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  }
  for (const auto& r : kRoles) EXPECT_FALSE(r.meaning.empty()) << r.name;
  for (const auto& f : kFeatures) EXPECT_FALSE(f.meaning.empty()) << f.name;
  for (const auto& c : kControls) EXPECT_FALSE(c.meaning.empty()) << c.name;
  EXPECT_EQ(control_names(), (std::vector<std::string>{"revoke", "publish-crl", "approve", "reject", "restart", "advance-time", "reset-time",
                                                      "start-coap-proxy", "operator", "idm-down", "idm-up"}));
  EXPECT_EQ(closest_name("idm_down", control_names()), "idm-down");
}

}  // namespace
}  // namespace estlab::conformance
