#!/usr/bin/env python3
"""Captured logs: what a function prints shows up in `nimbus logs NAME` and the admin logs API
under its request id, framed by Lambda's START / END / REPORT lines, and the Invoke API's
`X-Amz-Log-Type: Tail` returns the invocation's log base64-encoded."""

import base64
import re
import uuid

import nimbus_harness as h

REPORT = re.compile(r"REPORT RequestId: (\S+)\s+Duration: [0-9.]+ ms\s+"
                    r"Billed Duration: [0-9]+ ms\s+Memory Size: (\d+) MB\s+"
                    r"Max Memory Used: [0-9]+ MB")


class LogsTest(h.NimbusTestCase):

    def deploy_printer(self, runtime, marker):
        name, _ = self.deploy_fixture(runtime, f"logs-{runtime}", marker=marker, memory=192)
        return name

    def check_cli_logs(self, runtime):
        marker = uuid.uuid4().hex
        name = self.deploy_printer(runtime, marker)
        r = self.nimbus.invoke(name, {"action": "echo"})
        self.assertStatus(r, 200)
        request_id = r.header("x-amzn-RequestId")
        self.assertTrue(request_id)
        printed = f"log-marker-{marker}"

        def logs_mention_everything():
            p = self.nimbus.cli("logs", name)
            return p if (p.returncode == 0 and printed in p.stdout
                         and f"REPORT RequestId: {request_id}" in p.stdout) else None

        p = h.wait_until(logs_mention_everything, 5.0, interval=0.2)
        if not p:
            p = self.nimbus.cli("logs", name)
            self.fail(f"`nimbus logs {name}` exited {p.returncode} without the printed line "
                      f"and the REPORT line:\nstdout: {p.stdout}\nstderr: {p.stderr}")
        out = p.stdout
        self.assertIn(f"START RequestId: {request_id}", out)
        self.assertIn(f"END RequestId: {request_id}", out)
        report = REPORT.search(out)
        self.assertIsNotNone(report, f"no complete REPORT line in:\n{out}")
        self.assertEqual(report.group(1), request_id)
        self.assertEqual(report.group(2), "192")
        printed_line = next(line for line in out.splitlines() if printed in line)
        self.assertIn(request_id, printed_line,
                      "the printed line should carry the request id it belongs to")
        start, mid, end = (out.index(f"START RequestId: {request_id}"), out.index(printed),
                           out.index(f"END RequestId: {request_id}"))
        self.assertLess(start, mid)
        self.assertLess(mid, end)
        self.assertLess(end, out.index(f"REPORT RequestId: {request_id}"))

    def test_nimbus_logs_shows_what_a_python_function_printed_between_start_end_and_report(self):
        self.check_cli_logs("python3")

    def test_nimbus_logs_shows_what_a_nodejs_function_printed_between_start_end_and_report(self):
        self.check_cli_logs("nodejs")

    def test_nimbus_logs_shows_what_a_provided_bootstrap_printed(self):
        self.check_cli_logs("provided")

    def test_the_logs_api_tags_printed_lines_with_their_request_id(self):
        marker = uuid.uuid4().hex
        name = self.deploy_printer("python3", marker)
        ids = []
        for _ in range(2):
            r = self.nimbus.invoke(name, {"action": "echo"})
            self.assertStatus(r, 200)
            ids.append(r.header("x-amzn-RequestId"))
        self.assertNotEqual(ids[0], ids[1])

        def lines_for(request_id):
            r = self.nimbus.request("GET", f"/v1/functions/{name}/logs?request_id={request_id}")
            self.assertStatus(r, 200)
            return r.json()["lines"]

        lines = h.wait_until(lambda: [l for l in lines_for(ids[1])
                                      if l["text"].startswith("REPORT")], 5.0, 0.2)
        self.assertTrue(lines, "no REPORT line for the second request")
        lines = lines_for(ids[1])
        self.assertTrue(all(l["request_id"] == ids[1] for l in lines), lines)
        printed = [l for l in lines if f"log-marker-{marker}" in l["text"]]
        self.assertEqual(len(printed), 1, lines)
        self.assertEqual(printed[0]["stream"], "stdout")
        platform = [l["text"].split(" ")[0] for l in lines if l["stream"] == "platform"
                    and l["text"].split(" ")[0] in ("START", "END", "REPORT")]
        self.assertEqual(platform, ["START", "END", "REPORT"])
        times = [l["time_ms"] for l in lines]
        self.assertEqual(times, sorted(times))

    def test_invoke_with_log_type_tail_returns_the_invocation_log_base64(self):
        marker = uuid.uuid4().hex
        name = self.deploy_printer("python3", marker)
        r = self.nimbus.invoke(name, {"action": "echo"}, headers={"X-Amz-Log-Type": "Tail"})
        self.assertStatus(r, 200)
        encoded = r.header("X-Amz-Log-Result")
        self.assertTrue(encoded, "X-Amz-Log-Result missing")
        log = base64.b64decode(encoded, validate=True).decode()
        request_id = r.header("x-amzn-RequestId")
        self.assertIn(f"log-marker-{marker}", log)
        self.assertIn(f"START RequestId: {request_id}", log)
        self.assertIn(f"END RequestId: {request_id}", log)
        self.assertRegex(log, REPORT)
        self.assertLessEqual(len(log.encode()), 4096)

    def test_invoke_without_log_type_returns_no_log(self):
        name = self.deploy_printer("python3", uuid.uuid4().hex)
        r = self.nimbus.invoke(name, {"action": "echo"})
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Amz-Log-Result"))


if __name__ == "__main__":
    h.main()
