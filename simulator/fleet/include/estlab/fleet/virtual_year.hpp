// The fleet in virtual time (issue 12 item 2): the lab's clock is shared with the fleet and moved
// day by day (the target's advance-time control), and N devices live their certificates' lifetimes
// through the real gateway: each enrolls, renews (simplereenroll, authenticated by the certificate
// it renews) when `renew_at` of its certificate's lifetime has passed, falls back to its factory
// certificate when its own expired first, and, on the rollover day, the CA's root is rolled over
// (control rollover-ca) and every device fetches /cacerts and renews within the spread. Days
// without work are skipped; the report is the load per virtual day and week, so a renewal storm
// is seen before it happens in the field.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "estlab/conformance/target.hpp"
#include "estlab/core/key.hpp"

namespace estlab::fleet {

struct VirtualYearOptions {
  std::uint64_t devices = 1000;
  int days = 365;            // virtual days lived
  double renew_at = 0.5;     // renew when this fraction of the certificate's lifetime has passed (0 < x < 1)
  int onboard_days = 1;      // first enrollments spread over this many days (device n on day n % onboard_days)
  int rollover_day = -1;     // < 0: no CA rollover
  int rollover_spread = 7;   // days over which the devices react to the rollover
  std::string rollover_ca = "root";
  std::size_t concurrency = 64;
  std::size_t threads = 1;
  KeyType key_type = KeyType::ec_p256;
  std::uint64_t seed = 1;
  std::chrono::milliseconds timeout{15'000};
};

struct VirtualDay {
  std::uint64_t enrollments = 0;  // first enrollments (factory certificate)
  std::uint64_t renewals = 0;     // simplereenroll at renew_at
  std::uint64_t rollover_renewals = 0;
  std::uint64_t cacerts = 0;      // /cacerts fetched after the rollover
  std::uint64_t expired = 0;      // devices whose certificate expired before they renewed (they enroll again)
  std::uint64_t failures = 0;     // exchanges without a certificate (the device tries again the next day)
  std::uint64_t total() const { return enrollments + renewals + rollover_renewals + cacerts + expired; }
};

struct VirtualYearReport {
  std::string target;
  std::string profile;
  VirtualYearOptions options;
  std::vector<VirtualDay> days;  // index = virtual day
  double wall_s = 0;
  double lifetime_days = 0;      // of the certificates the CA issued (the first one's)
  std::uint64_t exchanges = 0;
  std::string rollover_note;     // what the rollover control said, or why there was none
  std::vector<std::string> errors;  // the first few failure messages

  VirtualDay totals() const;
  std::vector<VirtualDay> weeks() const;  // days 0-6, 7-13, ...
  std::size_t peak_day() const;           // the day with the most exchanges
};

// Throws ConfigError when the target cannot share its clock (no advance-time control or no `now`),
// lacks the device-factory role, or the options are out of range.
VirtualYearReport run_virtual_year(const conformance::Target& target, const VirtualYearOptions& options,
                                   const std::function<void(int day, std::uint64_t exchanges)>& on_day = {});

std::string to_json(const VirtualYearReport& report);
std::string to_html(const VirtualYearReport& report);  // one self-contained page with the load per day and week
std::string to_text(const VirtualYearReport& report);

}  // namespace estlab::fleet
