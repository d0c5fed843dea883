#!/usr/bin/env python3
"""Starting and stopping instances never stalls the request loops: while 40 instances of one
function start at once and stop again after their keep-alive (three rounds), and functions
are deployed and removed, a tight loop of GET /metrics and of invokes of an already warm
function keeps answering, each request within its bound in BOUND_S.

GET /metrics is served by the daemon alone, so its bound is tight. An invoke also waits for the
warm instance's own process to be scheduled, which on a 2-core machine starting 40 instances
takes up to a few hundred milliseconds, so its bound only catches a loop stalled outright.

The probing loop runs in its own process, so the load this test generates (threads in this
process) does not stretch the measured latencies through Python's GIL, and it measures how long
it was itself not scheduled, so a starved prober is not taken for a stalled daemon. The numbers
are printed on every run."""

import concurrent.futures
import json
import subprocess
import sys
import textwrap
import threading
import time

import hostile_probe as p
import nimbus_harness as h

BOUND_S = {"metrics": 0.200, "invoke": 1.0}
BULK = 40
ROUNDS = 3
HOLD_S = 2.0  # long enough for all BULK invokes to overlap, so each gets its own instance

# Prints "ready", then alternates GET /metrics and an invoke of a warm function on fresh
# connections until its stdin closes, then prints {"start": its time.monotonic() at start,
# "samples": [[kind, seconds since start, latency, status, frozen], ...]} as JSON. `frozen` is
# the longest the prober itself was not scheduled during that request (the largest gap between
# the 5 ms ticks of a second thread).
MONITOR = textwrap.dedent('''\
    import bisect, http.client, json, sys, threading, time
    port, warm = int(sys.argv[1]), sys.argv[2]
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    ticks = []
    def tick():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)
    threading.Thread(target=tick, daemon=True).start()
    samples, start = [], time.monotonic()
    print("ready", flush=True)
    body = json.dumps({"action": "echo"}).encode()
    requests = [("metrics", "GET", "/metrics", None),
                ("invoke", "POST", "/2015-03-31/functions/%s/invocations" % warm, body)]
    i = 0
    while not stop.is_set():
        kind, method, path, data = requests[i % 2]
        i += 1
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request(method, path, body=data)
            r = c.getresponse()
            r.read()
            status = r.status
            c.close()
        except OSError as e:
            status = repr(e)
        samples.append([kind, t0, time.monotonic() - t0, status])
        time.sleep(0.002)
    out = []
    for kind, t0, lat, status in samples:
        lo = max(bisect.bisect_left(ticks, t0) - 1, 0)
        hi = bisect.bisect_right(ticks, t0 + lat) + 1
        window = ticks[lo:hi]
        frozen = max((b - a for a, b in zip(window, window[1:])), default=0.0)
        out.append([kind, round(t0 - start, 4), lat, status, round(frozen, 4)])
    print(json.dumps({"start": start, "samples": out}), flush=True)
    ''')


class Monitor:
    def __init__(self, port, warm):
        self.proc = subprocess.Popen([sys.executable, "-c", MONITOR, str(port), warm],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()  # the window opens once it samples
        if ready.strip() != "ready":
            raise RuntimeError(f"the probing process did not start: {ready!r}")

    def stop(self):
        out, _ = self.proc.communicate(timeout=60)  # closes its stdin: the signal to stop
        return json.loads(out)


def summary(samples, kind):
    lat = sorted(s[2] for s in samples if s[0] == kind)
    if not lat:
        return {"n": 0}
    return {"n": len(lat), "p50_ms": round(lat[len(lat) // 2] * 1000, 1),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
            "max_ms": round(lat[-1] * 1000, 1)}


class LoopResponsivenessTest(p.ProbeMixin, h.NimbusTestCase):

    def test_metrics_and_warm_invokes_answer_promptly_while_instances_start_and_stop_in_bulk(self):
        warm = self.deploy_probe("loop-warm")
        bulk = self.deploy_probe("loop-bulk", concurrency_max=BULK, keep_alive=1, timeout=30)
        self.probe(warm, {"action": "echo"})

        quiet = Monitor(self.nimbus.port, warm)
        time.sleep(2.0)  # a quiet window for reference
        baseline = quiet.stop()["samples"]

        churn_stop = threading.Event()
        churn_log = []

        def churn():
            # Deploys and removes functions (each invoked once, so removal stops an instance).
            while not churn_stop.is_set():
                name = h.unique_name("loop-churn")
                t0 = time.monotonic()
                try:
                    self.nimbus.deploy_files(self.scratch, p.probe_files(name))
                    self.nimbus.invoke(name, {"action": "echo"}, timeout=30)
                    code = self.nimbus.cli("rm", name).returncode
                except (AssertionError, OSError) as e:  # reported with the other findings
                    code = repr(e)
                churn_log.append((name, code, round(time.monotonic() - t0, 2)))

        monitor = Monitor(self.nimbus.port, warm)
        churner = threading.Thread(target=churn)
        churner.start()
        rounds = []
        try:
            for _ in range(ROUNDS):
                began = time.monotonic()
                with concurrent.futures.ThreadPoolExecutor(BULK) as pool:
                    answers = list(pool.map(
                        lambda i: self.nimbus.invoke(bulk, {"action": "hold", "seconds": HOLD_S},
                                                     timeout=60), range(BULK)))
                good = [a for a in answers
                        if a.status == 200 and not a.header("X-Amz-Function-Error")]
                failed = [a for a in answers if a not in good]
                instances = {a.json()["instance"] for a in good}
                answered = time.monotonic()
                # keep_alive 1: every instance stops about a second after its request.
                stopped = h.wait_until(lambda: not h.instance_pids(bulk), 15)
                rounds.append({"instances": len(instances), "all_stopped": bool(stopped),
                               "at": [began, answered, time.monotonic()],
                               "failed": sorted({f"{a.status} {a.text()[:200]}"
                                                 for a in failed}),
                               "failures": len(failed)})
        finally:
            churn_stop.set()
            churner.join()
            run = monitor.stop()
        samples = run["samples"]
        for r in rounds:  # seconds into the probing window: start, all answered, all stopped
            r["at"] = [round(t - run["start"], 2) for t in r["at"]]

        report = {"baseline": {k: summary(baseline, k) for k in ("metrics", "invoke")},
                  "under_load": {k: summary(samples, k) for k in ("metrics", "invoke")},
                  "rounds": rounds, "churn": churn_log}
        sys.stderr.write(f"\nloop responsiveness: {json.dumps(report)}\n")

        self.assertTrue(all(r["instances"] >= BULK * 3 // 4 for r in rounds),
                        f"precondition: the bulk rounds did not start ~{BULK} instances: {rounds}")
        self.assertTrue(churn_log, "precondition: no function was deployed and removed")

        # A request during which the prober itself was not scheduled for half its bound or more
        # measured the machine, not the daemon: it is reported, not held against the daemon.
        slow = [s for s in samples if s[2] > BOUND_S[s[0]]]
        stalls = sorted((s for s in slow if s[4] < BOUND_S[s[0]] / 2), key=lambda s: -s[2])
        listed = [(k, at, round(lat * 1000), round(fr * 1000)) for k, at, lat, _, fr in slow]
        sys.stderr.write(f"over their bound ({BOUND_S}): {len(slow)} requests, of which the "
                         f"prober was starved in {len(slow) - len(stalls)} [kind, s into the "
                         f"window, ms, ms starved]: {listed}\n")
        problems = []
        if stalls:
            problems.append(
                f"{len(stalls)} of {len(samples)} requests took longer than their bound {BOUND_S} "
                "while instances started and stopped ([kind, s into the window, ms]): "
                f"{[(k, at, round(lat * 1000, 1)) for k, at, lat, _, _ in stalls[:20]]}; under "
                f"load {json.dumps(report['under_load'])}, quiet {json.dumps(report['baseline'])}; "
                f"rounds (start, answered, stopped) at {[r['at'] for r in rounds]}")
        failed = [s for s in samples if s[3] != 200]
        if failed:
            problems.append(f"{len(failed)} requests of the probing loop failed: {failed[:10]}")
        for i, r in enumerate(rounds):
            if r["failures"]:
                problems.append(f"round {i}: {r['failures']} of {BULK} bulk invokes failed: "
                                f"{r['failed']}")
            if not r["all_stopped"]:
                problems.append(f"round {i}: instances were still running 15 s after keep_alive")
        problems += [f"deploying, invoking and removing {name}: {code}"
                     for name, code, _ in churn_log if code]
        if problems:
            self.fail("\n".join(problems))


if __name__ == "__main__":
    h.main()
