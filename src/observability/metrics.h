// Prometheus text exposition for /metrics (format 0.0.4). Rendered on demand from the catalog
// and the scheduler's counters; nothing here is on the request path.
#pragma once

#include <string>

#include "catalog/catalog.h"
#include "scheduler/scheduler.h"

namespace nimbus::observability {

std::string RenderMetrics(const catalog::Snapshot& snap, const scheduler::Scheduler& scheduler);

}  // namespace nimbus::observability
