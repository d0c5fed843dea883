#!/usr/bin/env python3
"""A function over its `timeout`: the caller hears 504 (trigger) or Sandbox.Timedout (Invoke
API) within timeout + 1 s, the instance process is gone by then, and the next request runs on
a fresh instance."""

import time

import nimbus_harness as h

TIMEOUT_S = 1
# The manifest's timeout, plus the one second of grace the platform has to answer and to kill.
BOUND_S = TIMEOUT_S + 1.0


class TimeoutsTest(h.NimbusTestCase):

    def run_over_time(self, runtime, through):
        name, _ = self.deploy_fixture(runtime, f"timeout-{runtime}", timeout=TIMEOUT_S)
        with h.PidWatcher(name) as watcher:
            start = time.monotonic()
            if through == "trigger":
                r = self.nimbus.request("GET", f"/fn/{name}/sleep?seconds=5", timeout=10)
            else:
                r = self.nimbus.invoke(name, {"action": "sleep", "seconds": 5}, timeout=10)
            elapsed = time.monotonic() - start
            # Keep sampling until the bound so a late-starting instance is still seen.
            while time.monotonic() - start < BOUND_S and any(
                    h.pid_exists(p) for p in watcher.seen | set(h.instance_pids(name))):
                time.sleep(0.02)
        left = [p for p in watcher.seen if h.pid_exists(p)]
        gone_at = time.monotonic() - start

        self.assertTrue(watcher.seen, "no instance process was seen while the request ran")
        self.assertLess(elapsed, BOUND_S, f"the caller waited {elapsed:.2f}s for a timeout of "
                                          f"{TIMEOUT_S}s")
        self.assertGreaterEqual(elapsed, TIMEOUT_S - 0.05, "answered before the timeout")
        self.assertEqual(left, [], f"instance processes still alive {gone_at:.2f}s after the "
                                   f"request started (timeout {TIMEOUT_S}s)")
        return name, r

    def test_a_timed_out_python_request_answers_504_through_the_trigger_and_its_instance_dies(self):
        _, r = self.run_over_time("python3", "trigger")
        self.assertStatus(r, 504)
        self.assertEqual(r.json(), {"message": "Endpoint request timed out"})
        self.assertTrue(r.header("x-amzn-ErrorType"))

    def test_a_timed_out_python_invoke_is_sandbox_timedout_and_its_instance_dies(self):
        name, r = self.run_over_time("python3", "invoke")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled")
        body = r.json()
        self.assertEqual(body["errorType"], "Sandbox.Timedout")
        self.assertIn("Task timed out after 1.00 seconds", body["errorMessage"])

    def test_a_timed_out_nodejs_invoke_is_sandbox_timedout_and_its_instance_dies(self):
        _, r = self.run_over_time("nodejs", "invoke")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled")
        self.assertEqual(r.json()["errorType"], "Sandbox.Timedout")

    def test_the_request_after_a_timeout_runs_on_a_fresh_instance(self):
        name, _ = self.run_over_time("python3", "invoke")
        r = self.nimbus.invoke(name, {"action": "echo"})
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Amz-Function-Error"))
        self.assertEqual(r.json()["event"], {"action": "echo"})


if __name__ == "__main__":
    h.main()
