#!/usr/bin/env python3
"""Scaling per function: concurrency.max caps the instances (extra requests queue rather than
fail), keep_alive ends idle instances (scale to zero), and a redeploy under load loses no
request while new requests switch to the new code."""

import os
import threading
import time

import nimbus_harness as h


class ScalingTest(h.NimbusTestCase):

    def test_three_concurrent_requests_share_two_instances_under_concurrency_max_2(self):
        name, _ = self.deploy_fixture("python3", "conc-max", concurrency_max=2, timeout=10)
        results = [None] * 3

        def call(i):
            results[i] = self.nimbus.request("GET", f"/fn/{name}/sleep?seconds=1", timeout=20)

        start = time.monotonic()
        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start

        for r in results:
            self.assertStatus(r, 200)
        answers = [r.json() for r in results]
        instances = {a["instance"] for a in answers}
        pids = {a["pid"] for a in answers}
        self.assertEqual(len(instances), 2, f"instances used: {instances}")
        self.assertLessEqual(len(pids), 2, f"pids reported: {pids}")
        # Two ran side by side and the third waited for one of them: two rounds of 1 s.
        self.assertGreaterEqual(elapsed, 1.9, "three 1 s requests on two instances took "
                                              f"only {elapsed:.2f}s")
        doc = self.nimbus.function(name)
        self.assertLessEqual(doc["instances"]["busy"] + doc["instances"]["idle"], 2)

    def test_an_idle_instance_is_gone_after_its_keep_alive(self):
        name, _ = self.deploy_fixture("python3", "keepalive", keep_alive=1)
        r = self.nimbus.request("GET", f"/fn/{name}/hello")
        self.assertStatus(r, 200)
        pids = h.instance_pids(name)
        self.assertTrue(pids, "no instance process right after the request")
        # keep_alive 1 s, plus up to 3 s for the idler to notice and the process to exit.
        self.assertNoInstancesWithin(name, 4.0)
        self.assertFalse([p for p in pids if h.pid_exists(p)], "instance processes not reaped")
        doc = self.nimbus.function(name)
        self.assertEqual(doc["instances"]["busy"], 0)
        self.assertEqual(doc["instances"]["idle"], 0)
        self.assertEqual(sum(doc["instances"].values()), 0, doc["instances"])

    def test_min_warm_instances_start_before_any_request_and_outlive_keep_alive(self):
        name, _ = self.deploy_fixture("python3", "minwarm", keep_alive=1, min_warm=2)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and len(h.instance_pids(name)) < 2:
            time.sleep(0.05)
        warm = h.instance_pids(name)
        self.assertEqual(len(warm), 2, f"min_warm 2 started {len(warm)} instances without a request")
        time.sleep(2.5)  # well past keep_alive: 1
        self.assertEqual(sorted(h.instance_pids(name)), sorted(warm), "min_warm instances were stopped")
        self.assertEqual(self.nimbus.function(name)["instances"]["idle"], 2)
        r = self.nimbus.request("GET", f"/fn/{name}/hello")
        self.assertStatus(r, 200)

    def test_a_function_scaled_to_zero_wakes_on_the_next_request(self):
        name, _ = self.deploy_fixture("nodejs", "wake", keep_alive=1)
        first = self.nimbus.invoke(name, {"n": 1})
        self.assertStatus(first, 200)
        self.assertNoInstancesWithin(name, 4.0)
        second = self.nimbus.invoke(name, {"n": 2})
        self.assertStatus(second, 200)
        self.assertEqual(second.json()["event"], {"n": 2})
        self.assertNotEqual(second.json()["instance"], first.json()["instance"])

    def test_redeploying_twice_under_load_fails_no_request_and_switches_to_new_code(self):
        name = h.unique_name("redeploy-load")
        d = h.write_function_dir(self.scratch, h.function_files("python3", name, marker="1"))
        self.nimbus.deploy(d)
        deployed_at = {1: 0.0}  # marker -> monotonic time its deploy returned
        records = [[], []]  # per client: (start, marker or error)
        stop = threading.Event()

        def client(idx):
            while not stop.is_set():
                start = time.monotonic()
                try:
                    if idx == 0:
                        r = self.nimbus.request("GET", f"/fn/{name}/load", timeout=10)
                    else:
                        r = self.nimbus.invoke(name, {"action": "echo"}, timeout=10)
                    if r.status == 200 and r.header("X-Amz-Function-Error") is None:
                        records[idx].append((start, int(r.json()["marker"])))
                    else:
                        records[idx].append((start, f"{r.status} {r.text()[:200]}"))
                except OSError as e:
                    records[idx].append((start, f"transport error {e}"))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        try:
            for marker in (2, 3):
                time.sleep(0.7)
                with open(os.path.join(d, "app.py"), "w") as f:
                    f.write(h.PY_HANDLER.replace("__MARKER__", str(marker)))
                self.nimbus.deploy(d)
                deployed_at[marker] = time.monotonic()
            time.sleep(0.7)
        finally:
            stop.set()
            for t in threads:
                t.join()

        for idx, rec in enumerate(records):
            failures = [m for _, m in rec if not isinstance(m, int)]
            self.assertEqual(failures, [], f"client {idx}: failed requests during redeploy")
            self.assertGreater(len(rec), 5, f"client {idx} sent too few requests to matter")
            markers = [m for _, m in rec]
            self.assertEqual(markers, sorted(markers),
                             f"client {idx} saw the code go backwards: {markers}")
            self.assertEqual(markers[-1], 3)
            for start, m in rec:
                newest = max(k for k, t in deployed_at.items() if t <= start)
                self.assertGreaterEqual(m, newest, "a request sent after version "
                                        f"{newest} was deployed ran version {m}")
        seen = {m for rec in records for _, m in rec}
        self.assertEqual(seen, {1, 2, 3})
        self.assertEqual(self.nimbus.function(name)["version"], "3")


if __name__ == "__main__":
    h.main()
