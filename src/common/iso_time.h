// Wall-clock time: now in epoch milliseconds, and UTC timestamps in ISO 8601 as AWS writes them
// in event documents.
//
// Threading: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>

namespace nimbus {

// Milliseconds since the Unix epoch, from the system (wall) clock.
int64_t EpochMs();
// "2026-11-29T12:00:00.123Z"
std::string IsoTimeMs(int64_t ms_since_epoch);
// "2026-11-29T12:00:00Z" (milliseconds dropped), EventBridge's "time".
std::string IsoTimeSeconds(int64_t ms_since_epoch);

}  // namespace nimbus
