#!/usr/bin/env python3
"""AWS's own SDK (npm `@aws-sdk/client-lambda`, JavaScript v3) invokes functions through
nimbus's Lambda Invoke API with nothing but an endpoint override: results, log tails, function
errors, Lambda's error types, DryRun, Event and qualifiers come back the way the SDK expects
them from Lambda. The SDK is installed once into the test cache (see nimbus_harness.npm_cached).
"""

import json
import os
import subprocess

import nimbus_harness as h

SDK_VERSION = "3.1164.0"

# Runs one InvokeCommand per line of input ({"FunctionName", ...}) and prints what the SDK
# returned (or threw) as one JSON line each.
SCRIPT = r"""
import { LambdaClient, InvokeCommand } from "@aws-sdk/client-lambda";
import { createInterface } from "node:readline";
const client = new LambdaClient({ endpoint: process.argv[2], region: "local", maxAttempts: 1,
  credentials: { accessKeyId: "test", secretAccessKey: "test" } });
for await (const line of createInterface({ input: process.stdin })) {
  const input = JSON.parse(line);
  if (input.Payload !== undefined) input.Payload = JSON.stringify(input.Payload);
  try {
    const r = await client.send(new InvokeCommand(input));
    console.log(JSON.stringify({ ok: true, StatusCode: r.StatusCode, ExecutedVersion: r.ExecutedVersion,
      FunctionError: r.FunctionError ?? null,
      Payload: r.Payload ? Buffer.from(r.Payload).toString() : null,
      Log: r.LogResult ? Buffer.from(r.LogResult, "base64").toString() : null }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, name: e.name, message: e.message,
      status: e.$metadata?.httpStatusCode ?? null }));
  }
}
"""


class AwsSdkTest(h.NimbusTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sdk_dir = h.npm_cached("@aws-sdk/client-lambda", SDK_VERSION)
        cls.script = os.path.join(cls.sdk_dir, "invoke.mjs")
        with open(cls.script, "w") as f:  # rewritten each run: cheap, and never stale
            f.write(SCRIPT)
        cls.name, cls.dir = cls.deploy_fixture_cls("python3", "sdk")

    @classmethod
    def deploy_fixture_cls(cls, runtime, base):
        name = h.unique_name(base)
        d, _ = cls.nimbus.deploy_files(cls.scratch, h.function_files(runtime, name, "1"))
        return name, d

    def sdk(self, *calls):
        p = subprocess.run(["node", self.script, self.nimbus.endpoint], cwd=self.sdk_dir,
                           input="".join(json.dumps(c) + "\n" for c in calls),
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        self.assertEqual(len(out), len(calls), p.stdout + p.stderr)
        return out

    def test_the_sdk_invokes_a_function_and_reads_its_result_version_and_log_tail(self):
        [r] = self.sdk({"FunctionName": self.name, "Payload": {"hello": "sdk"}, "LogType": "Tail"})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["StatusCode"], 200)
        self.assertEqual(r["ExecutedVersion"], "1")
        self.assertIsNone(r["FunctionError"])
        self.assertEqual(json.loads(r["Payload"])["event"], {"hello": "sdk"})
        self.assertIn("START RequestId:", r["Log"])
        self.assertIn("REPORT RequestId:", r["Log"])

    def test_the_sdk_sees_a_handler_exception_as_an_unhandled_function_error(self):
        [r] = self.sdk({"FunctionName": self.name, "Payload": {"action": "raise"}})
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["FunctionError"], "Unhandled")
        error = json.loads(r["Payload"])
        self.assertEqual(error["errorType"], "ValueError")
        self.assertIn("boom from python", error["errorMessage"])

    def test_the_sdk_raises_lambdas_error_types(self):
        missing, bad_qualifier = self.sdk({"FunctionName": "no-such-function"},
                                          {"FunctionName": self.name, "Qualifier": "nope"})
        self.assertFalse(missing["ok"])
        self.assertEqual(missing["name"], "ResourceNotFoundException")
        self.assertEqual(missing["status"], 404)
        self.assertIn("no-such-function", missing["message"])
        self.assertEqual(bad_qualifier["name"], "ResourceNotFoundException")

    def test_the_sdk_does_dry_runs_events_and_qualified_invocations(self):
        dry, event, qualified = self.sdk(
            {"FunctionName": self.name, "InvocationType": "DryRun"},
            {"FunctionName": self.name, "InvocationType": "Event", "Payload": {"n": 1}},
            {"FunctionName": self.name, "Qualifier": "1", "Payload": {"n": 2}})
        self.assertEqual(dry["StatusCode"], 204)
        self.assertEqual(event["StatusCode"], 202)
        self.assertEqual(qualified["StatusCode"], 200)
        self.assertEqual(qualified["ExecutedVersion"], "1")
        self.assertEqual(json.loads(qualified["Payload"])["event"], {"n": 2})


if __name__ == "__main__":
    h.main()
