// Prometheus text exposition for /metrics (format 0.0.4). Rendered on demand from the catalog
// the scheduler's and the delivery engine's counters; nothing here is on the request path.
#pragma once

#include <string>

#include "catalog/catalog.h"
#include "queue/delivery.h"
#include "scheduler/scheduler.h"

namespace nimbus::gateway {

// `delivery` may be null (no asynchronous side).
std::string RenderMetrics(const catalog::Snapshot& snap, const scheduler::Scheduler& scheduler,
                          const queue::Delivery* delivery = nullptr);

}  // namespace nimbus::gateway
