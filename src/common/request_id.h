// Request ids: fresh random UUIDs (version 4), the form Lambda gives aws_request_id.
//
// Threading: thread-safe (each thread has its own generator).
#pragma once

#include <string>

namespace nimbus {

std::string NewRequestId();

}  // namespace nimbus
