#!/usr/bin/env python3
"""Hostile use of the daemon's local interfaces: another process talking to an instance's
Runtime API (from the host, and from inside another function), a runtime that never asks for
its first event, and functions calling the admin API on the daemon's port. The Runtime API of
an instance serves that instance only; everything else is refused without ever handing out an
event or accepting a result, and the daemon keeps serving throughout."""

import concurrent.futures
import json
import os
import secrets
import textwrap
import threading
import time

import hostile_probe as p
import nimbus_harness as h

NEXT = "/2018-06-01/runtime/invocation/next"
INIT_TIMEOUT_BOUND_S = 20.0  # the default init timeout is 10 s


def runtime_api_address(function_name):
    """AWS_LAMBDA_RUNTIME_API of the function's instance, read from the host's /proc."""
    for pid in h.instance_pids(function_name):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        for kv in env:
            if kv.startswith(b"AWS_LAMBDA_RUNTIME_API="):
                return kv.split(b"=", 1)[1].decode()
    return None


class AbuseCase(p.ProbeMixin, h.NimbusTestCase):

    def assertRefused(self, attempt, what):
        self.assertIn(attempt.get("outcome"), p.REFUSED_OUTCOMES,
                      f"{what} was not refused: {p.describe(attempt)}")

    def invoke_many(self, name, count, sleep=0):
        """`count` concurrent echo invokes (each handler sleeping `sleep` seconds first);
        returns [(payload, Response or exception)]."""
        def one(i):
            payload = {"action": "echo", "i": i, "tag": secrets.token_hex(4)}
            if sleep:
                payload["sleep"] = sleep
            try:
                return payload, self.nimbus.invoke(name, payload, timeout=30)
            except OSError as e:
                return payload, e
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))

    @staticmethod
    def echo_problem(payload, r):
        """What is wrong with the answer `r` to an echo of `payload`; None if nothing."""
        if isinstance(r, Exception):
            return f"{payload} got no answer ({r!r})"
        if r.status != 200 or r.header("X-Amz-Function-Error"):
            return f"{payload} got {r!r}"
        try:
            if json.loads(r.body)["result"] == {"event": payload}:
                return None
        except (ValueError, KeyError, TypeError):
            pass
        return f"{payload} got someone else's result: {r.text()[:300]}"

    def assertAllEchoed(self, results, context):
        bad = [b for b in (self.echo_problem(payload, r) for payload, r in results) if b]
        if bad:
            self.fail(f"{context}: {len(bad)} of {len(results)} invokes failed; "
                      f"{self.daemon_state()}:\n" + "\n".join(bad))


class ForeignNextCase(AbuseCase):
    """A foreign local process (this test, as root) asks an idle instance's Runtime API for
    the next event. Each test is a class of its own, with its own daemon: where this is not
    refused it crashes the daemon."""

    def prepare_idle_instance(self):
        name = self.deploy_probe("abuse-idle", concurrency_max=20)
        self.probe(name, {"action": "echo"})
        addr = runtime_api_address(name)
        self.assertTrue(addr, f"precondition: no AWS_LAMBDA_RUNTIME_API in the environment of "
                              f"{name}'s processes {h.instance_pids(name)}")
        return name, addr

    def foreign_next_then_invokes(self):
        """The crash reproducer: a foreign GET /next on an idle instance, then 20 concurrent
        invokes; asserts the daemon is still up. Returns (name, foreign answer, results)."""
        name, addr = self.prepare_idle_instance()
        foreign = p.raw_http(addr, "GET", NEXT, connect_timeout=1, read_timeout=0.5)
        results = self.invoke_many(name, 20)
        self.assertIsNone(self.nimbus.proc.poll(),
                          f"after a foreign GET /next ({foreign['outcome']}) and 20 invokes: "
                          f"{self.daemon_state()}")
        return name, foreign, results


class ForeignNextThenInvokesTest(ForeignNextCase):

    def test_a_foreign_get_next_then_20_concurrent_invokes_leave_the_daemon_serving(self):
        name, foreign, results = self.foreign_next_then_invokes()
        self.assertAllEchoed(results, f"after a foreign GET /next ({p.describe(foreign)})")
        self.assertFalse(foreign.get("outcome") == "http" and foreign.get("status") == 200,
                         f"the foreign process received an event: {p.describe(foreign)}")


class ForeignNextHeldOpenTest(ForeignNextCase):

    def test_a_foreign_get_next_held_open_never_receives_an_event(self):
        name, addr = self.prepare_idle_instance()
        held = {}
        t = threading.Thread(target=lambda: held.update(
            p.raw_http(addr, "GET", NEXT, connect_timeout=1, read_timeout=4)))
        t.start()
        # Invokes for as long as the foreign request may be waiting for an event.
        results = []
        while t.is_alive():
            results += self.invoke_many(name, 2)
            time.sleep(0.05)
        t.join()
        self.assertIsNone(self.nimbus.proc.poll(),
                          f"while a foreign GET /next was open ({p.describe(held)}): "
                          f"{self.daemon_state()}")
        self.assertFalse(held.get("outcome") == "http" and held.get("status") == 200,
                         f"the foreign process received an event: {p.describe(held)}")
        self.assertAllEchoed(results, "while a foreign GET /next was open")
        self.assertAllEchoed(self.invoke_many(name, 4), "afterwards")


class ForeignNextWithoutSandboxTest(ForeignNextCase):
    """The same reproducer on a daemon started with --insecure-no-sandbox, where nothing stops a
    local process from talking to an instance's Runtime API: it may take an event (that is what
    the sandbox prevents), but the daemon must stay up and every invoke must get an answer."""

    daemon_args = ("--insecure-no-sandbox",)

    def test_a_foreign_get_next_then_20_concurrent_invokes_leave_the_daemon_answering(self):
        name, foreign, results = self.foreign_next_then_invokes()
        unanswered = [f"{payload}: {r!r}" for payload, r in results if isinstance(r, Exception)]
        self.assertEqual(unanswered, [], "invokes that got no answer at all")
        # And the function serves normally once the foreign connection is gone.
        self.assertAllEchoed(self.invoke_many(name, 4), "afterwards")


class CrossInstanceTest(AbuseCase):
    """Function F2 talks to function F1's Runtime API from inside its own instance."""

    def test_another_instances_runtime_api_refuses_next_and_results(self):
        # One instance of F1, kept busy with a queue of requests, so a GET /next that F1's
        # Runtime API took as its runtime's would be handed a queued event.
        f1 = self.deploy_probe("abuse-f1", concurrency_max=1, timeout=10)
        f2 = self.deploy_probe("abuse-f2", timeout=30)
        f1_instance, env = self.probe(f1, {"action": "env"})
        addr = env["AWS_LAMBDA_RUNTIME_API"]
        attack = {"action": "steal", "addr": addr, "wait_s": 4,
                  "fake_id": "00000000-0000-4000-8000-" + secrets.token_hex(6)}
        report = {}

        def attack_from_f2():
            try:
                report["r"] = self.probe(f2, attack, timeout=40)[1]
            except AssertionError as e:
                report["r"] = e

        t = threading.Thread(target=attack_from_f2)
        t.start()
        results = []
        while t.is_alive():  # F1 stays busy, with a request queued, while F2 attacks
            results += self.invoke_many(f1, 2, sleep=0.2)
        t.join()

        self.assertIsNone(self.nimbus.proc.poll(), f"during the attack: {self.daemon_state()}")
        self.assertNotIsInstance(report["r"], Exception, f"{f2} did not report: {report['r']}")
        get_next, post_response, post_error = report["r"]
        # Every finding at once: where the Runtime API is open, several go wrong together.
        problems = [f"{f2}'s {what} on {f1}'s Runtime API was not refused: {p.describe(a)}"
                    for what, a in (("GET /next", get_next), ("POST .../response", post_response),
                                    ("POST .../error", post_error))
                    if a.get("outcome") not in p.REFUSED_OUTCOMES]
        problems += [f"{f1}'s caller of {b}" for b in
                     (self.echo_problem(payload, r) for payload, r in results) if b]
        if problems:
            self.fail("\n".join(problems))
        instance, _ = self.probe(f1, {"action": "echo"})
        self.assertEqual(instance, f1_instance, f"{f1}'s instance was replaced")


INIT_NEVER_CALLS_NEXT = textwrap.dedent('''\
    #!/bin/sh
    echo "__LINE__" >&2
    while true; do sleep 1; done
    ''')


class InitTimeoutTest(AbuseCase):

    def test_a_runtime_that_never_asks_for_an_event_fails_with_runtime_init_error(self):
        name = h.unique_name("abuse-init")
        line = f"hostile runtime {secrets.token_hex(4)}: not calling /next"
        files = {"function.yaml": h.manifest_text(name, "provided", "bootstrap", timeout=25),
                 "bootstrap": INIT_NEVER_CALLS_NEXT.replace("__LINE__", line)}
        self.nimbus.deploy_files(self.scratch, files)
        start = time.monotonic()
        try:
            r = self.nimbus.invoke(name, {"x": 1}, timeout=35)
        except OSError as e:
            self.fail(f"no answer after {time.monotonic() - start:.1f}s: {e!r}")
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, INIT_TIMEOUT_BOUND_S,
                        f"the invoke ended after {elapsed:.1f}s: {r!r}")
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled", repr(r))
        self.assertEqual(r.json().get("errorType"), "Runtime.InitError", repr(r))
        self.assertIn(line, r.json().get("errorMessage", ""),
                      "the error does not carry the runtime's output")

        fixed = h.function_files("provided", name)
        self.nimbus.deploy_files(self.scratch, fixed)
        r = self.nimbus.invoke(name, {"x": 2}, timeout=20)
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Amz-Function-Error"), repr(r))
        self.assertEqual(r.json(), {"x": 2})


class AdminApiFromFunctionsTest(AbuseCase):

    def test_a_function_calling_the_admin_api_without_the_token_gets_401(self):
        victim = self.deploy_probe("abuse-admin-victim")
        attacker = self.deploy_probe("abuse-admin")
        addr = f"127.0.0.1:{self.nimbus.port}"
        token_file = os.path.join(self.nimbus.data_dir, "admin.token")
        _, read = self.probe(attacker, {"action": "read", "paths": [token_file]})
        _, (listing, deletion) = self.probe(attacker, {"action": "http", "requests": [
            {"addr": addr, "method": "GET", "path": "/v1/functions"},
            {"addr": addr, "method": "DELETE", "path": f"/v1/functions/{victim}"},
        ]})
        self.assertTrue(read[token_file].get("ok") is False,
                        f"the function read the admin token: {p.dump(read)}")
        self.assertEqual((listing.get("outcome"), listing.get("status")), ("http", 401),
                         f"without a token: {p.describe(listing)}")
        self.assertEqual((deletion.get("outcome"), deletion.get("status")), ("http", 401),
                         f"without a token: {p.describe(deletion)}")
        self.assertIn(victim, [f["name"] for f in self.nimbus.functions()],
                      "the function deleted another function through the admin API")

    def test_a_function_with_network_none_cannot_connect_to_the_daemon(self):
        name = h.unique_name("abuse-offline")
        files = p.probe_files(name, "network: none\n")
        _, deployed = self.nimbus.deploy_files(self.scratch, files, check=False)
        self.assertEqual(deployed.returncode, 0, "deploying with `network: none` failed: "
                                                 f"{deployed.stdout}{deployed.stderr}")
        addr = f"127.0.0.1:{self.nimbus.port}"
        _, (attempt,) = self.probe(name, {"action": "http", "requests": [
            {"addr": addr, "method": "GET", "path": "/v1/functions"}]})
        self.assertIn(attempt.get("outcome"), ("refused", "unreachable", "connect-timeout"),
                      f"a `network: none` function reached the daemon: {p.describe(attempt)}")


if __name__ == "__main__":
    h.main()


# A python3 handler that, when asked, writes raw bytes on its own runtime channel
# (docs/runtime-channel.md) before answering normally.
CHANNEL_WRITER = '''
import os

def handler(event, context):
    raw = event.get("write")
    if raw is not None:
        os.write(int(os.environ["NIMBUS_RUNTIME_FD"]), raw.encode("latin-1"))
    return {"echo": event.get("n")}
'''


class RuntimeChannelAbuseTest(AbuseCase):
    """A function writing its own frames on its runtime channel can only hurt its own instance:
    a frame for another request is refused and the invocation goes on; a malformed frame closes
    the channel, fails that invocation, says why in the function's log, and the next request
    gets a fresh instance."""

    def deploy_writer(self, base):
        name = h.unique_name(base)
        files = {"function.yaml": h.manifest_text(name, "python3", "app.handler", timeout=10),
                 "app.py": CHANNEL_WRITER}
        self.nimbus.deploy_files(self.scratch, files)
        return name

    def logs_with(self, name, text):
        def found():
            p = self.nimbus.cli("logs", name)
            return p.stdout if p.returncode == 0 and text in p.stdout else None
        return h.wait_until(found, 5.0, interval=0.2)

    def test_a_response_for_another_request_is_refused_and_the_invocation_goes_on(self):
        name = self.deploy_writer("abuse-chan-id")
        r = self.nimbus.invoke(name, {"n": 1, "write": "R not-this-request 2\n{}"}, timeout=20)
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Amz-Function-Error"), repr(r))
        self.assertEqual(r.json(), {"echo": 1})
        out = self.logs_with(name, "InvalidRequestID")
        self.assertIsNotNone(out, "the runtime did not log the refusal of the stray response")
        r = self.nimbus.invoke(name, {"n": 2}, timeout=20)
        self.assertEqual(r.json(), {"echo": 2})

    def test_malformed_frames_end_only_their_own_instance(self):
        for base, raw, why in (("abuse-chan-http", "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\n\r\n",
                                "malformed"),
                               ("abuse-chan-huge", "R x 99999999\n", "malformed"),
                               ("abuse-chan-long", "R " + "a" * 400, "longer than 256 bytes")):
            with self.subTest(base):
                name = self.deploy_writer(base)
                r = self.nimbus.invoke(name, {"n": 1, "write": raw}, timeout=20)
                self.assertStatus(r, 200)
                self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled", repr(r))
                self.assertEqual(r.json().get("errorType"), "Runtime.ExitError", repr(r))
                out = self.logs_with(name, "runtime channel closed")
                self.assertIsNotNone(out, "the function's log does not say the channel was closed")
                self.assertIn(why, out)
                r = self.nimbus.invoke(name, {"n": 2}, timeout=20)
                self.assertStatus(r, 200)
                self.assertEqual(r.json(), {"echo": 2}, "the next request did not get a fresh instance")
