// Checks of schedule expressions, written the way Amazon EventBridge writes them:
// "rate(5 minutes)" or "cron(min hour day-of-month month day-of-week year)". The manifest parser
// uses it; the scheduler trigger relies on it having accepted only expressions it can evaluate.
#pragma once

#include <string_view>

#include "common/status.h"

namespace nimbus::manifest {

// Ok, or InvalidArgument whose message says what is wrong and how to fix it (without a file
// location; the caller adds that). Rules:
//  - rate(VALUE UNIT): VALUE a whole number >= 1; UNIT minute|minutes|hour|hours|day|days,
//    singular exactly when VALUE is 1.
//  - cron(...): six fields separated by spaces, with AWS's ranges (minutes 0-59, hours 0-23,
//    day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 or SUN-SAT, year 1970-2199),
//    wildcards , - * / in every field, ? L W in day-of-month, ? L # in day-of-week, and
//    exactly one of day-of-month and day-of-week set to '?'.
Status CheckScheduleExpression(std::string_view expr);

}  // namespace nimbus::manifest
