#include "gateway/metrics.h"

namespace nimbus::gateway {

namespace {

void AppendAsync(std::string& out, const queue::Delivery& delivery) {
  out += "# HELP nimbus_async_events Pending asynchronous events by function and state.\n"
         "# TYPE nimbus_async_events gauge\n";
  std::string dead = "# HELP nimbus_async_dead_letters Events in the dead-letter store.\n"
                     "# TYPE nimbus_async_dead_letters gauge\n";
  for (const auto& [name, c] : delivery.AllCounts()) {
    out += "nimbus_async_events{function=\"" + name + "\",state=\"queued\"} " + std::to_string(c.queued) + "\n";
    out += "nimbus_async_events{function=\"" + name + "\",state=\"retrying\"} " + std::to_string(c.retrying) + "\n";
    out += "nimbus_async_events{function=\"" + name + "\",state=\"in_flight\"} " + std::to_string(c.in_flight) + "\n";
    dead += "nimbus_async_dead_letters{function=\"" + name + "\"} " + std::to_string(c.dead) + "\n";
  }
  out += dead;
  const queue::DeliveryStats s = delivery.stats();
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
  };
  counter("nimbus_async_accepted_total", "Asynchronous events made durable since start.", s.accepted);
  counter("nimbus_async_duplicates_total", "Repeats collapsed by an idempotency key since start.", s.duplicates);
  counter("nimbus_async_succeeded_total", "Asynchronous runs that returned since start.", s.succeeded);
  counter("nimbus_async_failed_total", "Asynchronous runs that failed since start.", s.failed);
  counter("nimbus_async_dead_lettered_total", "Events dead-lettered since start.", s.dead_lettered);
}

}  // namespace

std::string RenderMetrics(const catalog::Snapshot& snap, const scheduler::Scheduler& scheduler,
                          const queue::Delivery* delivery) {
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
  out += queued;
  if (delivery != nullptr) AppendAsync(out, *delivery);
  return out;
}

}  // namespace nimbus::gateway
