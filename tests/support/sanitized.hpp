// Whether this test binary was built with AddressSanitizer. Resident memory means little under it
// (shadow memory, redzones, a quarantine of freed blocks), so bounds on it apply to plain builds.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define ESTLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ESTLAB_ASAN 1
#endif
#endif

namespace estlab::test {
#ifdef ESTLAB_ASAN
inline constexpr bool kAddressSanitized = true;
#else
inline constexpr bool kAddressSanitized = false;
#endif
}  // namespace estlab::test
