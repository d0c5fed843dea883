#!/usr/bin/env python3
"""Every way in, for every runtime: a manifest route with a path parameter, /fn/NAME,
/fn/NAME/deep/path, the Lambda Invoke API and `nimbus invoke`. Each fixture echoes its event,
so each test checks that the event the handler saw is the one the caller sent. Also the Invoke
API's DryRun and Event invocation types and its 6 MB payload limit."""

import json
import unittest

import nimbus_harness as h

RUNTIMES = ("python3", "nodejs", "provided")


def seen_event(runtime, answer):
    """The event the handler saw: python3 and nodejs wrap it, the sh bootstrap returns it bare."""
    return answer if runtime == "provided" else answer["event"]


class InvokePathsTest(h.NimbusTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.names = {}
        for runtime in RUNTIMES:
            name = h.unique_name(f"paths-{runtime}")
            h_dir = h.write_function_dir(cls.scratch, h.function_files(
                runtime, name, routes=[("GET", f"/{runtime}-items/{{id}}")]),
                executable=h.EXECUTABLES)
            cls.nimbus.deploy(h_dir)
            cls.names[runtime] = name

    def check_route_with_path_parameter(self, runtime):
        r = self.nimbus.request("GET", f"/{runtime}-items/item-42?color=red")
        self.assertStatus(r, 200)
        event = seen_event(runtime, r.json())
        self.assertEqual(event["pathParameters"], {"id": "item-42"})
        self.assertEqual(event["routeKey"], f"GET /{runtime}-items/{{id}}")
        self.assertEqual(event["rawPath"], f"/{runtime}-items/item-42")
        self.assertEqual(event["queryStringParameters"], {"color": "red"})

    def check_fn_name(self, runtime):
        name = self.names[runtime]
        r = self.nimbus.request("POST", f"/fn/{name}", b'{"k": "v"}',
                                {"Content-Type": "application/json"})
        self.assertStatus(r, 200)
        event = seen_event(runtime, r.json())
        self.assertEqual(event["rawPath"], f"/fn/{name}")
        self.assertEqual(event["requestContext"]["http"]["method"], "POST")
        self.assertEqual(event["body"], '{"k": "v"}')
        self.assertFalse(event["isBase64Encoded"])

    def check_fn_name_deep_path(self, runtime):
        name = self.names[runtime]
        r = self.nimbus.request("GET", f"/fn/{name}/deep/path/here")
        self.assertStatus(r, 200)
        event = seen_event(runtime, r.json())
        self.assertEqual(event["rawPath"], f"/fn/{name}/deep/path/here")
        self.assertEqual(event["routeKey"], f"ANY /fn/{name}/{{proxy+}}")
        self.assertEqual(event["pathParameters"], {"proxy": "deep/path/here"})

    def check_invoke_api(self, runtime):
        name = self.names[runtime]
        payload = {"hello": runtime, "n": [1, 2, 3], "nested": {"ok": True}}
        r = self.nimbus.invoke(name, payload)
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Amz-Function-Error"))
        self.assertEqual(seen_event(runtime, r.json()), payload)
        self.assertTrue(r.header("x-amzn-RequestId"), "x-amzn-RequestId missing")
        self.assertEqual(r.header("X-Amz-Executed-Version"), "1")
        if runtime != "provided":
            self.assertEqual(r.json()["requestId"], r.header("x-amzn-RequestId"))

    def check_cli_invoke(self, runtime):
        name = self.names[runtime]
        payload = {"from": "cli", "runtime": runtime}
        p = self.nimbus.cli("invoke", name, "--payload", json.dumps(payload))
        self.assertEqual(p.returncode, 0, f"nimbus invoke failed: {p.stdout}{p.stderr}")
        answer = parse_json_output(p.stdout)
        self.assertEqual(seen_event(runtime, answer), payload)

    def check_unknown_function_is_resource_not_found(self, runtime):
        r = self.nimbus.invoke(f"missing-{runtime}", {})
        self.assertStatus(r, 404)
        self.assertEqual(r.header("x-amzn-ErrorType"), "ResourceNotFoundException")
        self.assertEqual(r.json()["errorType"], "ResourceNotFoundException")


class InvocationTypesTest(h.NimbusTestCase):
    """The Invoke API's other invocation types and its payload limit."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.marker = h.unique_name("async")
        cls.name = h.unique_name("types-python3")
        cls.nimbus.deploy(h.write_function_dir(
            cls.scratch, h.function_files("python3", cls.name, marker=cls.marker)))

    def test_a_dry_run_answers_204_for_an_existing_function(self):
        r = self.nimbus.invoke(self.name, {}, headers={"X-Amz-Invocation-Type": "DryRun"})
        self.assertStatus(r, 204)
        r = self.nimbus.invoke("missing-fn", {}, headers={"X-Amz-Invocation-Type": "DryRun"})
        self.assertStatus(r, 404)

    def test_an_event_invocation_answers_202_and_runs_the_function_afterwards(self):
        r = self.nimbus.invoke(self.name, {"action": "echo"},
                               headers={"X-Amz-Invocation-Type": "Event"})
        self.assertStatus(r, 202)
        request_id = r.header("x-amzn-RequestId")
        self.assertTrue(request_id)

        def printed():
            logs = self.nimbus.request(
                "GET", f"/v1/functions/{self.name}/logs?request_id={request_id}")
            return [l for l in logs.json()["lines"]
                    if f"log-marker-{self.marker}" in l["text"]]

        self.assertTrue(h.wait_until(printed, 10.0, 0.1),
                        "the queued event did not run within 10 s")

    def test_a_payload_over_6_mb_is_refused_as_request_too_large(self):
        payload = b'{"big": "' + b"x" * (6 * 1024 * 1024) + b'"}'
        r = self.nimbus.invoke(self.name, payload)
        self.assertStatus(r, 413)
        self.assertEqual(r.header("x-amzn-ErrorType"), "RequestTooLargeException")
        self.assertEqual(r.json()["errorType"], "RequestTooLargeException")


def parse_json_output(stdout):
    """The CLI prints the function's result; accept it alone or as the last JSON line."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    raise AssertionError(f"no JSON result in the CLI's output: {stdout!r}")


def _add_tests():
    checks = {
        "route_with_path_parameter": "check_route_with_path_parameter",
        "fn_name": "check_fn_name",
        "fn_name_deep_path": "check_fn_name_deep_path",
        "invoke_api": "check_invoke_api",
        "cli_invoke": "check_cli_invoke",
    }
    sentences = {
        "route_with_path_parameter": "a_manifest_route_delivers_its_path_parameter_to_{}",
        "fn_name": "slash_fn_slash_name_reaches_{}_with_the_request_body",
        "fn_name_deep_path": "slash_fn_slash_name_with_a_deep_path_reaches_{}_as_proxy",
        "invoke_api": "the_invoke_api_hands_the_payload_to_{}_and_returns_its_result",
        "cli_invoke": "nimbus_invoke_prints_the_result_of_{}",
    }
    for runtime in RUNTIMES:
        for key, method in checks.items():
            def test(self, _m=method, _r=runtime):
                getattr(self, _m)(_r)
            setattr(InvokePathsTest, "test_" + sentences[key].format(runtime), test)

    def test_unknown(self):
        self.check_unknown_function_is_resource_not_found("python3")
    InvokePathsTest.test_invoking_an_unknown_function_answers_resource_not_found = test_unknown


_add_tests()

if __name__ == "__main__":
    h.main()
