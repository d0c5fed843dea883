#include "observability/metrics.h"

namespace nimbus::observability {

std::string RenderMetrics(const catalog::Snapshot& snap, const scheduler::Scheduler& scheduler) {
  std::string out;
  out += "# HELP nimbus_functions Deployed functions.\n# TYPE nimbus_functions gauge\n";
  out += "nimbus_functions " + std::to_string(snap.functions.size()) + "\n";
  out += "# HELP nimbus_instances Instance processes by function and state.\n# TYPE nimbus_instances gauge\n";
  std::string queued = "# HELP nimbus_queued_requests Requests waiting for a free instance.\n"
                       "# TYPE nimbus_queued_requests gauge\n";
  const auto counts = scheduler.AllCounts();
  for (const auto& [name, e] : snap.functions) {
    auto it = counts.find(name);
    const scheduler::Counts c = it == counts.end() ? scheduler::Counts{} : it->second;
    // Function names are [A-Za-z0-9-_]: no label escaping needed.
    out += "nimbus_instances{function=\"" + name + "\",state=\"busy\"} " + std::to_string(c.busy) + "\n";
    out += "nimbus_instances{function=\"" + name + "\",state=\"idle\"} " + std::to_string(c.idle) + "\n";
    out += "nimbus_instances{function=\"" + name + "\",state=\"starting\"} " + std::to_string(c.starting) + "\n";
    queued += "nimbus_queued_requests{function=\"" + name + "\"} " + std::to_string(c.queued) + "\n";
  }
  return out + queued;
}

}  // namespace nimbus::observability
