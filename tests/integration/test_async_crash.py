#!/usr/bin/env python3
"""No accepted event is lost when the daemon crashes. Sender threads post 5,000 `Event`
invokes, each with an id of its own, over keep-alive connections, while a killer thread
SIGKILLs the daemon at random moments and starts it again on the same data directory and
port. A sender whose request got no answer sends that id again later, until it is answered
202; only ids answered 202 count as accepted. The function appends each event's id to a file
on the host. Once the queue has drained, every accepted id must be in that file (run at least
once) or in the dead-letter store. Prints one line of counts:

    accepted=5000 executed=5000 duplicates=37 dead_lettered=0 kills=6 not_found=0

Duplicates are expected: delivery is at-least-once, and an id re-sent after a crash that
followed its commit is accepted twice."""

import http.client
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import textwrap
import threading
import time
import unittest

import nimbus_harness as h

EVENTS = 5000
SENDERS = 8
MIN_KILLS = 5
# Sending is paced to last at least this long, so the kills fall while events arrive.
SEND_SECONDS = 25.0
KILL_GAP_S = (1.5, 4.0)
DRAIN_TIMEOUT_S = 180.0
FUNCTION_CONCURRENCY = 10

# Each run takes a little while, so that events pile up in the queue and every kill finds
# some waiting, some running and some half-recorded.
APP = textwrap.dedent('''\
    import time

    def handler(event, context):
        time.sleep(0.05)
        with open("/mnt/out/ids.txt", "a") as f:
            f.write(event["id"] + "\\n")
        return {"id": event["id"]}
    ''')


class CrashableDaemon(h.Daemon):
    """A Daemon that can be SIGKILLed (the daemon process alone, as a crash would) and started
    again on the same port and data directory. Every process group it ever started is killed
    in stop_all()."""

    def __init__(self, extra_args=()):
        super().__init__(extra_args)
        self.groups = []

    def start(self):
        super().start()
        self.groups.append(self.proc.pid)
        return self

    def crash(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def restart_same_port(self, timeout=h.STARTUP_TIMEOUT_S * 2):
        """Starts `nimbus serve` again on self.port; the port was just released by the crash."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            self._spawn()
            self.groups.append(self.proc.pid)
            last_error = self._await_ready(deadline)
            if last_error is None:
                return
            if self.proc.poll() is None:
                break  # running but not answering: a real failure, not a busy port
            time.sleep(0.2)  # it exited (say the port was not free yet): try again
        raise RuntimeError(f"could not restart nimbus on port {self.port}: {last_error}")

    def stop_all(self):
        self.stop()
        for pgid in self.groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Sender(threading.Thread):
    """Posts its ids as Event invokes on one keep-alive connection, paced to `rate` per second.
    An id that gets no answer, or an answer other than 202, goes to the back of its list and
    is sent again; `accepted` maps each id answered 202 to its request ids."""

    def __init__(self, port, name, ids, rate, stop):
        super().__init__(daemon=True)
        self.port = port
        self.path = f"/2015-03-31/functions/{name}/invocations"
        self.todo = list(ids)
        self.rate = rate
        self.stop = stop
        self.accepted = {}
        self.resends = 0
        self.refusals = {}  # status -> count, for the report
        self.conn = None

    def _post(self, event_id):
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        body = json.dumps({"id": event_id}).encode()
        self.conn.request("POST", self.path, body,
                          {"X-Amz-Invocation-Type": "Event", "Content-Type": "application/json"})
        resp = self.conn.getresponse()
        resp.read()
        if resp.will_close:
            self.conn.close()
            self.conn = None
        return resp.status, resp.getheader("x-amzn-RequestId")

    def run(self):
        start = time.monotonic()
        sent = 0
        while self.todo and not self.stop.is_set():
            # Pacing: the n-th send is not before start + n / rate.
            ahead = start + sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            event_id = self.todo.pop(0)
            sent += 1
            try:
                status, rid = self._post(event_id)
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                self.todo.append(event_id)
                self.resends += 1
                time.sleep(0.05)  # the daemon is down or restarting
                continue
            if status == 202 and rid:
                self.accepted.setdefault(event_id, []).append(rid)
            else:
                self.refusals[status] = self.refusals.get(status, 0) + 1
                self.todo.append(event_id)
                self.resends += 1
                time.sleep(0.05)
        if self.conn is not None:
            self.conn.close()


class AsyncCrashTest(unittest.TestCase):

    def setUp(self):
        self.daemon = CrashableDaemon(["--async-retry-base", "200ms"])
        self.out_dir = tempfile.mkdtemp(prefix="nimbus-it-crash-out-")
        self.scratch = tempfile.mkdtemp(prefix="nimbus-it-fns-")
        os.chmod(self.out_dir, 0o777)
        self.ids_file = os.path.join(self.out_dir, "ids.txt")
        with open(self.ids_file, "w"):
            pass
        os.chmod(self.ids_file, 0o666)  # every instance uid appends to it

    def tearDown(self):
        self.daemon.stop_all()

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        super().run(result)
        if len(result.failures) + len(result.errors) > before:
            sys.stderr.write(f"\n--- nimbus log (last 30000 bytes) ---\n"
                             f"{self.daemon.log_text()[-30000:]}--- end of nimbus log ---\n")
        self.daemon.cleanup()
        shutil.rmtree(self.out_dir, ignore_errors=True)
        shutil.rmtree(self.scratch, ignore_errors=True)
        return result

    def admin_json(self, path):
        r = self.daemon.request("GET", path, timeout=10)
        self.assertEqual(r.status, 200, f"GET {path}: {r!r}")
        return r.json()

    def pending_or_none(self, name):
        try:
            r = self.daemon.request("GET", f"/v1/functions/{name}/events", timeout=2)
            c = r.json()
            return c["queued"] + c["retrying"] + c["in_flight"]
        except (OSError, AssertionError, KeyError):
            return None

    def test_every_event_answered_202_runs_or_is_dead_lettered_across_sigkills(self):
        d = self.daemon.start()
        name = h.unique_name("async-crash")
        d.deploy_files(self.scratch, {
            "function.yaml": textwrap.dedent(f"""\
                name: {name}
                runtime: python3
                handler: app.handler
                timeout: 10
                concurrency: {{max: {FUNCTION_CONCURRENCY}, min_warm: 0}}
                filesystems:
                  - {{host: {self.out_dir}, mount: /mnt/out}}
                """),
            "app.py": APP})

        ids = [f"ev-{i:05d}" for i in range(EVENTS)]
        stop = threading.Event()
        rate = EVENTS / SEND_SECONDS / SENDERS
        senders = [Sender(d.port, name, ids[k::SENDERS], rate, stop) for k in range(SENDERS)]
        kills = 0
        kill_times = []
        pending_at_kills = []  # events not yet finished when each kill came, for the report
        started = time.monotonic()
        for s in senders:
            s.start()
        try:
            rng = random.Random()
            while any(s.is_alive() for s in senders) and time.monotonic() - started < 200:
                gap = rng.uniform(*KILL_GAP_S)
                deadline = time.monotonic() + gap
                while time.monotonic() < deadline and any(s.is_alive() for s in senders):
                    time.sleep(0.05)
                if not any(s.is_alive() for s in senders):
                    break
                pending_at_kills.append(self.pending_or_none(name))
                d.crash()
                kills += 1
                kill_times.append(round(time.monotonic() - started, 1))
                d.restart_same_port()
        finally:
            stop.set()
            for s in senders:
                s.join(timeout=60)
        send_s = time.monotonic() - started
        unsent = sum(len(s.todo) for s in senders)
        self.assertEqual(unsent, 0, f"{unsent} ids were never answered 202 within the run")
        self.assertGreaterEqual(kills, MIN_KILLS, f"only {kills} kills during {send_s:.0f}s of "
                                                  "sending: the run did not test much")

        accepted = {}
        for s in senders:
            accepted.update(s.accepted)
        drained = h.wait_until(
            lambda: (lambda c: c["queued"] + c["retrying"] + c["in_flight"] == 0)(
                self.admin_json(f"/v1/functions/{name}/events")),
            DRAIN_TIMEOUT_S, interval=0.5)
        counts = self.admin_json(f"/v1/functions/{name}/events")
        self.assertTrue(drained, f"the queue did not drain within {DRAIN_TIMEOUT_S}s: "
                                 f"{ {k: counts[k] for k in ('queued', 'retrying', 'in_flight')} }")

        with open(self.ids_file) as f:
            lines = [line.strip() for line in f]
        ran = [x for x in lines if x]
        ran_set = set(ran)
        dlq = self.admin_json(f"/v1/functions/{name}/events/dlq?limit=10000")
        dead_ids = set()
        for letter in dlq["dead_letters"]:
            try:
                dead_ids.add(json.loads(letter["payload"])["id"])
            except (ValueError, KeyError, TypeError):
                pass
        executed = [x for x in accepted if x in ran_set]
        dead_lettered = [x for x in accepted if x in dead_ids]
        not_found = sorted(x for x in accepted if x not in ran_set and x not in dead_ids)
        strangers = sorted(ran_set - set(ids))
        print(f"accepted={len(accepted)} executed={len(executed)} "
              f"duplicates={len(ran) - len(ran_set)} dead_lettered={len(dead_lettered)} "
              f"kills={kills} not_found={len(not_found)}", flush=True)
        resends = sum(s.resends for s in senders)
        refusals = {}
        for s in senders:
            for k, v in s.refusals.items():
                refusals[k] = refusals.get(k, 0) + v
        accepted_twice = sum(1 for v in accepted.values() if len(v) > 1)
        print(f"  sending took {send_s:.1f}s, kills at {kill_times} s with "
              f"{pending_at_kills} events pending, {resends} re-sends "
              f"(non-202 answers {refusals}), {accepted_twice} ids accepted twice, "
              f"{dlq['total']} dead letters, {len(ran)} lines", flush=True)

        self.assertEqual(len(accepted), EVENTS)
        self.assertEqual(strangers, [], "the file holds ids that were never sent")
        self.assertEqual(not_found, [],
                         f"{len(not_found)} accepted ids neither ran nor were dead-lettered, "
                         f"e.g. {not_found[:20]} (request ids "
                         f"{[accepted[x] for x in not_found[:5]]})")


if __name__ == "__main__":
    h.main()
