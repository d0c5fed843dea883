#!/usr/bin/env python3
"""Asynchronous invocations end to end, through the real daemon and real instances: an `Event`
invoke and an `async: true` route answer 202 once the event is durable and the function runs
later with the caller's request id; an idempotency key queues an event once; oversized
payloads and misplaced keys are refused; failures are retried and then dead-lettered, and a
replay runs a dead letter again; `on_success` hands Lambda's destination record to another
function; a purge drops queued events but lets the running one finish; a rate schedule fires
at deploy and again one period later; events queued when the daemon stops run after it
starts again.

Every test function records each run as a file of its own in a host directory mounted at
/mnt/out (`filesystems`): instances run under uids of their own, so no file is shared between
two runs. The test reads those files to learn what ran, with which request id and event."""

import base64
import calendar
import glob
import json
import os
import secrets
import shutil
import tempfile
import textwrap
import time

import nimbus_harness as h

# The function behind every test here: records a "start" file, then, by MODE, raises, sleeps
# SECONDS, or does nothing, records a "done" file and returns a result that names the event.
APP = textwrap.dedent('''\
    import json, os, time, uuid

    OUT = "/mnt/out"
    MODE = os.environ.get("MODE", "record")

    def _record(kind, event, context):
        rec = {"kind": kind, "request_id": context.aws_request_id, "event": event,
               "at": time.time()}
        base = os.path.join(OUT, "%s.%s.%s" % (context.function_name, kind, uuid.uuid4().hex))
        with open(base + ".tmp", "w") as f:
            json.dump(rec, f)
        os.rename(base + ".tmp", base + ".json")

    def handler(event, context):
        _record("start", event, context)
        if MODE == "raise":
            raise RuntimeError("async boom " + json.dumps(event.get("k")))
        if MODE == "sleep":
            time.sleep(float(os.environ.get("SECONDS", "1")))
        _record("done", event, context)
        return {"ok": True, "echo": event, "from": context.function_name}
    ''')

EVENT = {"X-Amz-Invocation-Type": "Event"}
ASYNC_MAX_PAYLOAD = 262144  # the daemon's default --async-max-payload
SCHEDULE_PERIOD_S = 60


def manifest(name, out_dir, mode="record", concurrency_max=10, timeout=10, seconds=None,
             extra=""):
    env = {"MODE": mode}
    if seconds is not None:
        env["SECONDS"] = str(seconds)
    lines = [f"name: {name}", "runtime: python3", "handler: app.handler",
             f"timeout: {timeout}", f"concurrency: {{max: {concurrency_max}, min_warm: 0}}",
             "environment:"]
    lines += [f"  {k}: {json.dumps(v)}" for k, v in env.items()]
    lines += ["filesystems:", f"  - {{host: {out_dir}, mount: /mnt/out}}"]
    return "\n".join(lines) + "\n" + textwrap.dedent(extra)


def parse_iso(text):
    """Seconds since the epoch of '2026-11-29T12:00:00Z' or '2026-11-29T12:00:00.123Z'."""
    whole, _, frac = text.rstrip("Z").partition(".")
    secs = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return secs + (float("0." + frac) if frac else 0.0)


class AsyncHarness(h.NimbusTestCase):
    """A daemon whose retries come after 200 ms instead of a minute, and an output directory
    every test function mounts at /mnt/out."""

    daemon_args = ("--async-retry-base", "200ms")
    out_dir = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Outside the daemon's data directory, writable by every instance uid.
        cls.out_dir = tempfile.mkdtemp(prefix="nimbus-it-async-out-")
        os.chmod(cls.out_dir, 0o777)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        if cls.out_dir:
            shutil.rmtree(cls.out_dir, ignore_errors=True)

    @classmethod
    def deploy_recorder(cls, base, **kw):
        name = h.unique_name(base)
        cls.nimbus.deploy_files(cls.scratch, {"function.yaml": manifest(name, cls.out_dir, **kw),
                                              "app.py": APP})
        return name

    def records(self, name, kind="start"):
        """Every run of `name` recorded so far (`start` or `done`), oldest first."""
        out = []
        for path in glob.glob(os.path.join(self.out_dir, f"{name}.{kind}.*.json")):
            with open(path) as f:
                out.append(json.load(f))
        return sorted(out, key=lambda r: r["at"])

    def wait_records(self, name, count, timeout=60, kind="start"):
        got = h.wait_until(lambda: len(self.records(name, kind)) >= count and
                           self.records(name, kind), timeout, interval=0.1)
        self.assertTrue(got, f"{name} recorded fewer than {count} '{kind}' runs within "
                             f"{timeout}s: {self.records(name, kind)}")
        return self.records(name, kind)

    def event_invoke(self, name, payload, key=None):
        headers = dict(EVENT)
        if key is not None:
            headers["X-Nimbus-Idempotency-Key"] = key
        return self.nimbus.invoke(name, payload, headers=headers)

    def accepted_id(self, r):
        self.assertStatus(r, 202)
        rid = r.header("x-amzn-RequestId")
        self.assertTrue(rid, f"202 without x-amzn-RequestId: {r!r}")
        return rid

    def event_counts(self, name):
        r = self.nimbus.request("GET", f"/v1/functions/{name}/events")
        self.assertStatus(r, 200)
        return r.json()

    def pending(self, name):
        c = self.event_counts(name)
        return c["queued"] + c["retrying"] + c["in_flight"]

    def wait_drained(self, name, timeout=60):
        drained = h.wait_until(lambda: self.pending(name) == 0, timeout, interval=0.1)
        self.assertTrue(drained, f"{name}'s events did not drain within {timeout}s: "
                                 f"{self.event_counts(name)}")

    def cli_json(self, *args):
        p = self.nimbus.cli(*args, "--json")
        self.assertEqual(p.returncode, 0, f"nimbus {' '.join(args)} --json exited "
                                          f"{p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return json.loads(p.stdout)


class AsyncInvocationTest(AsyncHarness):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Deployed first so that its one-minute period passes while the other tests run.
        cls.scheduled = cls.deploy_recorder("async-sched",
                                            extra=f"schedule: rate({SCHEDULE_PERIOD_S // 60} "
                                                  "minute)\n")
        cls.scheduled_deployed_at = time.time()

    # --- accepting events -----------------------------------------------------------------

    def test_an_event_invoke_answers_202_and_runs_the_function_with_that_request_id(self):
        name = self.deploy_recorder("async-invoke")
        payload = {"hello": secrets.token_hex(8), "n": [1, 2, 3]}
        rid = self.accepted_id(self.event_invoke(name, payload))
        [run] = self.wait_records(name, 1)
        self.assertEqual(run["request_id"], rid)
        self.assertEqual(run["event"], payload)
        [done] = self.wait_records(name, 1, kind="done")
        self.assertEqual(done["request_id"], rid)
        self.wait_drained(name)

    def test_an_async_route_answers_202_with_the_request_id_and_runs_with_the_v2_event(self):
        name = h.unique_name("async-route")
        path = f"/{name}/submit"
        self.nimbus.deploy_files(self.scratch, {
            "function.yaml": manifest(name, self.out_dir, extra=f"""\
                http:
                  - {{method: POST, path: {path}, async: true}}
                """),
            "app.py": APP})
        body = f"queued later {secrets.token_hex(4)}"
        r = self.nimbus.request("POST", path, body, {"Content-Type": "text/plain"})
        self.assertStatus(r, 202)
        rid = r.json()["requestId"]
        self.assertTrue(rid)
        self.assertEqual(r.header("apigw-requestid"), rid)
        [run] = self.wait_records(name, 1)
        event = run["event"]
        self.assertEqual(run["request_id"], rid)
        self.assertEqual(event["version"], "2.0")
        self.assertEqual(event["routeKey"], f"POST {path}")
        self.assertEqual(event["rawPath"], path)
        self.assertEqual(event["requestContext"]["requestId"], rid)
        got = event["body"]
        if event.get("isBase64Encoded"):
            got = base64.b64decode(got).decode()
        self.assertEqual(got, body)

    def test_a_repeated_idempotency_key_gets_the_first_request_id_and_runs_once(self):
        # One instance at a time, first in first out: when the later event has run, a queued
        # duplicate would have run before it.
        name = self.deploy_recorder("async-idem", concurrency_max=1)
        key = f"order-{secrets.token_hex(6)}"
        first = self.event_invoke(name, {"n": 1}, key=key)
        rid = self.accepted_id(first)
        self.assertIsNone(first.header("X-Nimbus-Idempotent-Replay"))
        again = self.event_invoke(name, {"n": 1}, key=key)
        self.assertEqual(self.accepted_id(again), rid)
        self.assertEqual(again.header("X-Nimbus-Idempotent-Replay"), "true")
        p = self.nimbus.cli("invoke", name, "--type", "Event", "--idempotency-key", key,
                            "--payload", '{"n": 1}')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(f"(request id {rid})", p.stdout)
        self.wait_records(name, 1, kind="done")

        later = self.accepted_id(self.event_invoke(name, {"n": 3}))
        self.assertNotEqual(later, rid)
        self.wait_drained(name)
        runs = self.wait_records(name, 2, kind="done")
        self.assertEqual([(r["request_id"], r["event"]) for r in runs],
                         [(rid, {"n": 1}), (later, {"n": 3})],
                         "the duplicate ran, or the later event did not")
        self.assertEqual(len(self.records(name, "start")), 2)

    def test_a_payload_over_the_async_limit_is_413_and_one_at_the_limit_is_accepted(self):
        name = h.unique_name("async-size")
        route = f"/{name}/big"
        self.nimbus.deploy_files(self.scratch, {
            "function.yaml": manifest(name, self.out_dir, extra=f"""\
                http:
                  - {{method: POST, path: {route}, async: true}}
                """),
            "app.py": APP})
        # Through an async route the limit applies to the API Gateway event built around the body.
        r = self.nimbus.request("POST", route, b"y" * ASYNC_MAX_PAYLOAD,
                                {"Content-Type": "text/plain"})
        self.assertStatus(r, 413)
        self.assertEqual(r.header("x-amzn-ErrorType"), "RequestEntityTooLargeException")
        # {"pad": "xxx..."} of exactly the limit, and one byte more.
        at_limit = b'{"pad":"' + b"x" * (ASYNC_MAX_PAYLOAD - 10) + b'"}'
        self.assertEqual(len(at_limit), ASYNC_MAX_PAYLOAD)
        over = b'{"pad":"' + b"x" * (ASYNC_MAX_PAYLOAD - 9) + b'"}'
        r = self.event_invoke(name, over)
        self.assertStatus(r, 413)
        # Lambda's answer to an oversized Event payload (docs/api.md).
        self.assertEqual(r.header("x-amzn-ErrorType"), "RequestEntityTooLargeException")
        self.assertEqual(r.json()["errorType"], "RequestEntityTooLargeException")
        self.assertEqual(r.json()["message"],
                         f"{len(over)} byte payload is too large for the Event invocation type "
                         f"(limit {ASYNC_MAX_PAYLOAD} bytes)")
        rid = self.accepted_id(self.event_invoke(name, at_limit))
        [run] = self.wait_records(name, 1)
        self.assertEqual(run["request_id"], rid)
        self.assertEqual(len(run["event"]["pad"]), ASYNC_MAX_PAYLOAD - 10)
        self.wait_drained(name)
        self.assertEqual(len(self.records(name)), 1, "the refused payload ran")

    def test_an_idempotency_key_on_a_request_response_invoke_is_400(self):
        name = self.deploy_recorder("async-key400")
        r = self.nimbus.invoke(name, {"a": 1}, headers={"X-Nimbus-Idempotency-Key": "k1"})
        self.assertStatus(r, 400)
        self.assertEqual(r.json()["errorType"], "InvalidParameterValueException")
        self.assertIn("X-Amz-Invocation-Type: Event", r.json()["message"])
        self.assertEqual(self.records(name), [], "the refused invoke ran")

    # --- failures, dead letters, replay ----------------------------------------------------

    def dead_letters(self, name):
        return self.cli_json("events", "dlq", name)

    def wait_dead_letters(self, name, total, timeout=60):
        doc = h.wait_until(lambda: (lambda d: d if d["total"] == total and
                                    len(d["dead_letters"]) == total else None)(
                                        self.dead_letters(name)), timeout, interval=0.2)
        self.assertTrue(doc, f"{name} did not reach {total} dead letters within {timeout}s: "
                             f"{self.dead_letters(name)}")
        return doc

    def test_a_failing_event_is_retried_then_dead_lettered_and_a_replay_runs_it_again(self):
        name = self.deploy_recorder("async-fail", mode="raise", extra="async: {retries: 1}\n")
        tag = secrets.token_hex(4)
        payload = {"k": tag}
        rid = self.accepted_id(self.event_invoke(name, payload))

        doc = self.wait_dead_letters(name, 1)
        [dead] = doc["dead_letters"]
        runs = self.records(name)
        self.assertEqual([r["request_id"] for r in runs], [rid, rid],
                         "with retries: 1 the event runs exactly twice before it is dead-lettered")
        self.assertEqual(dead["request_id"], rid)
        self.assertEqual(dead["condition"], "RetriesExhausted")
        self.assertEqual(dead["attempts"], 2)
        self.assertEqual(json.loads(dead["payload"]), payload)
        record = dead["record"]
        self.assertEqual(record["requestContext"]["condition"], "RetriesExhausted")
        self.assertEqual(record["requestContext"]["requestId"], rid)
        self.assertEqual(record["requestContext"]["approximateInvokeCount"], 2)
        self.assertEqual(record["requestPayload"], payload)
        self.assertEqual(record["responseContext"]["functionError"], "Unhandled")
        self.assertEqual(record["responsePayload"]["errorMessage"], f'async boom "{tag}"')
        self.assertEqual(self.pending(name), 0)
        self.assertEqual(self.event_counts(name)["dead_letters"], 1)

        p = self.nimbus.cli("events", "replay", name, "--all")
        self.assertEqual(p.returncode, 0, f"events replay: {p.stdout} {p.stderr}")
        self.assertIn("replayed 1", p.stdout)
        # The replayed event starts over with its attempts reset: one run and one retry more.
        runs = self.wait_records(name, 3)
        self.assertEqual(runs[2]["request_id"], rid)
        self.assertEqual(runs[2]["event"], payload)
        doc = self.wait_dead_letters(name, 1)
        [dead] = doc["dead_letters"]
        self.assertEqual(dead["condition"], "RetriesExhausted")
        self.assertEqual(dead["attempts"], 2)
        self.assertEqual(dead["request_id"], rid)
        self.assertEqual(len(self.records(name)), 4,
                         "the replay did not run the event once and retry it once")
        self.assertEqual(self.pending(name), 0)

    def test_on_success_delivers_lambdas_destination_record_to_the_other_function(self):
        audit = self.deploy_recorder("async-audit")
        name = self.deploy_recorder("async-src", extra=f"async: {{on_success: {audit}}}\n")
        payload = {"order": secrets.token_hex(4), "qty": 2}
        rid = self.accepted_id(self.event_invoke(name, payload))
        [delivered] = self.wait_records(audit, 1)
        record = delivered["event"]
        self.assertNotEqual(delivered["request_id"], rid)
        self.assertEqual(record["version"], "1.0")
        self.assertIn("timestamp", record)
        ctx = record["requestContext"]
        self.assertEqual(ctx["requestId"], rid)
        self.assertEqual(ctx["condition"], "Success")
        self.assertEqual(ctx["approximateInvokeCount"], 1)
        self.assertTrue(ctx["functionArn"].endswith(f":function:{name}:$LATEST"), ctx)
        self.assertEqual(record["requestPayload"], payload)
        self.assertEqual(record["responsePayload"], {"ok": True, "echo": payload, "from": name})
        self.assertEqual(record["responseContext"]["statusCode"], 200)
        self.assertEqual(record["responseContext"]["executedVersion"], "1")
        self.assertNotIn("functionError", record["responseContext"])
        self.assertEqual([r["request_id"] for r in self.records(name)], [rid])

    def test_a_purge_drops_queued_events_and_lets_the_running_one_finish(self):
        name = self.deploy_recorder("async-purge", mode="sleep", seconds=3, concurrency_max=1)
        rids = [self.accepted_id(self.event_invoke(name, {"n": i})) for i in range(5)]
        [running] = self.wait_records(name, 1)
        self.assertEqual(running["request_id"], rids[0], "events did not start oldest first")
        out = self.cli_json("events", "purge", name)
        self.assertEqual(out, {"purged": 4})
        self.wait_drained(name)
        [done] = self.wait_records(name, 1, kind="done")
        self.assertEqual(done["request_id"], rids[0])
        self.assertEqual([r["request_id"] for r in self.records(name)], [rids[0]],
                         "a purged event ran")
        self.assertEqual(self.event_counts(name)["dead_letters"], 0)

    # --- schedules ------------------------------------------------------------------------

    def test_a_rate_schedule_fires_at_deploy_and_again_one_period_later(self):
        name = self.scheduled
        [first] = self.wait_records(name, 1, timeout=30)
        event = first["event"]
        self.assertEqual(event["detail-type"], "Scheduled Event")
        self.assertEqual(event["source"], "aws.events")
        self.assertEqual(event["version"], "0")
        self.assertEqual(event["detail"], {})
        self.assertEqual(event["resources"], [f"arn:aws:events:local:000000000000:rule/{name}"])
        first_at = parse_iso(event["time"])
        self.assertLessEqual(abs(first_at - self.scheduled_deployed_at), 5,
                             f"the first firing is not at deploy ({event['time']})")

        doc = self.cli_json("info", name)
        next_at = parse_iso(doc["schedule"]["next_firing"])
        self.assertAlmostEqual(next_at - first_at, SCHEDULE_PERIOD_S, delta=1.0)
        self.assertEqual(doc["schedule"]["expression"], "rate(1 minute)")
        p = self.nimbus.cli("ls")
        self.assertEqual(p.returncode, 0, p.stderr)
        header, *rows = p.stdout.splitlines()
        self.assertTrue(header.rstrip().endswith("NEXT FIRING"), p.stdout)
        [row] = [r for r in rows if r.split()[0] == name]
        self.assertEqual(row.split()[-1], doc["schedule"]["next_firing"])

        # The second firing, about a period after the first: allow half a period more.
        second_by = first_at + SCHEDULE_PERIOD_S * 1.5
        runs = self.wait_records(name, 2, timeout=max(1.0, second_by - time.time()))
        second = runs[1]["event"]
        self.assertEqual(parse_iso(second["time"]) - first_at, SCHEDULE_PERIOD_S)
        self.assertNotEqual(second["id"], event["id"])
        self.assertNotEqual(runs[1]["request_id"], first["request_id"])


class AsyncRestartTest(AsyncHarness):

    def test_events_queued_at_a_clean_stop_run_after_the_restart(self):
        name = self.deploy_recorder("async-restart", mode="sleep", seconds=1.5,
                                    concurrency_max=1)
        rids = [self.accepted_id(self.event_invoke(name, {"n": i})) for i in range(5)]
        self.wait_records(name, 1)
        before = self.cli_json("events", "ls", name)
        self.assertGreaterEqual(before["queued"], 3, f"too few events pending to test: {before}")
        listed = {e["request_id"]: e for e in before["events"]}
        self.assertLessEqual(set(listed), set(rids))
        self.assertEqual({e["source"] for e in listed.values()}, {"invoke"})
        self.assertEqual(sorted(e["state"] for e in listed.values())[-1], "queued")
        code = self.nimbus.stop()
        self.assertEqual(code, 0, "the daemon did not stop cleanly on SIGTERM")
        finished_before = {r["request_id"] for r in self.records(name, "done")}
        self.assertLess(len(finished_before), 5)

        self.nimbus.start()  # the same data directory
        self.wait_drained(name, timeout=90)
        done = {r["request_id"] for r in self.wait_records(name, 5, kind="done", timeout=30)}
        self.assertEqual(done, set(rids), f"events lost across the restart; finished before the "
                                          f"stop: {sorted(finished_before)}")
        self.assertEqual(self.event_counts(name)["dead_letters"], 0)


if __name__ == "__main__":
    h.main()
