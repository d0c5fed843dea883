#!/usr/bin/env python3
"""Conformance tests for the C++ SDK (sdk/cpp/nimbus/lambda_runtime.hpp) against a fake daemon.

The function under test is cpp_test_function.cc, built by CMake (target
nimbus_sdk_cpp_test_function); NIMBUS_CPP_TEST_FUNCTION names the binary. CppSdkCases run over
both transports: the HTTP Runtime API (fake_runtime_api.py) and the runtime channel
(fake_runtime_channel.py, with the channel's own cases).
"""

import os
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import TIMEOUT_MS, HttpFallbackCases, RuntimeTestCase  # noqa: E402
from fake_runtime_channel import ChannelCases, ChannelRuntimeTestCase  # noqa: E402

FUNCTION = os.environ.get("NIMBUS_CPP_TEST_FUNCTION", "")
NEEDS_FUNCTION = unittest.skipUnless(
    FUNCTION and os.path.exists(FUNCTION),
    "set NIMBUS_CPP_TEST_FUNCTION to the built nimbus_sdk_cpp_test_function (ctest does)")


class CppSdkCases:
    """Cases for both transports; mixed into a RuntimeTestCase at the end of the file."""

    def start_cpp(self, **kwargs):
        return self.start(FUNCTION, "bootstrap", **kwargs)

    def start_echo(self, **kwargs):
        return self.start_cpp(**kwargs)  # echoes; {"op": "throw"} throws

    def start_init_failure(self):
        return self.start_cpp(env={"NIMBUS_TEST_INIT_ERROR": "1"})

    def test_a_success_response_is_posted_as_is(self):
        self.start_cpp()
        self.assertResponse(self.invoke({"hello": ["w", 1]}), {"hello": ["w", 1]})

    def test_the_handler_sees_the_context_fields(self):
        self.start_cpp()
        deadline = int(time.time() * 1000) + TIMEOUT_MS
        request_id = self.fake.add_event(
            {"op": "context"}, deadline_ms=deadline, trace_id="Root=1-abc;Sampled=1",
            client_context={"custom": {"c": "v"}}, cognito_identity={"cognitoIdentityId": "id-9"})
        result = self.fake.wait_result(request_id)
        self.assertEqual(result.kind, "response", result.body)
        doc = result.json()
        self.assertEqual(doc["request_id"], request_id)
        self.assertEqual(doc["function_arn"], "arn:aws:lambda:local:000000000000:function:test-fn")
        self.assertEqual(doc["trace_id"], "Root=1-abc;Sampled=1")
        self.assertEqual(doc["trace_env"], "Root=1-abc;Sampled=1")
        self.assertEqual(doc["client_context"], '{"custom": {"c": "v"}}')
        self.assertEqual(doc["cognito_identity"], '{"cognitoIdentityId": "id-9"}')
        self.assertEqual(doc["deadline_ms"], deadline)
        self.assertLessEqual(doc["remaining_ms"], TIMEOUT_MS)
        self.assertGreater(doc["remaining_ms"], TIMEOUT_MS - 3000)
        self.assertEqual(doc["function_name"], "test-fn")
        self.assertEqual(doc["function_version"], "7")
        self.assertEqual(doc["memory_mb"], 256)
        self.assertEqual(doc["log_group_name"], "/aws/lambda/test-fn")
        self.assertEqual(doc["log_stream_name"], "2025/01/01/[7]abcdef")

    def test_each_invocation_sees_its_own_trace_id_in_the_environment(self):
        # Shorter, longer (past the entry's first buffer) and shorter again: the entry is
        # rewritten in place or moved to a bigger buffer, never left with a previous value.
        self.start_cpp()
        for trace in ("Root=1-a;Sampled=1", "Root=1-" + "b" * 600 + ";Sampled=0", "Root=1-c", "Root=1-" + "d" * 300):
            request_id = self.fake.add_event({"op": "context"}, trace_id=trace)
            result = self.fake.wait_result(request_id)
            self.assertEqual(result.kind, "response", result.body)
            self.assertEqual(result.json()["trace_env"], trace)

    def test_a_handler_that_unsets_sets_or_clears_the_trace_id_does_not_change_the_next_ones(self):
        self.start_cpp()
        for op, n in (("unset_trace", 1), ("set_trace", 2), ("clear_env", 3)):
            result = self.fake.wait_result(self.fake.add_event({"op": op}, trace_id="Root=1-before-%d" % n))
            self.assertEqual(result.kind, "response", result.body)
            trace = "Root=1-after-%d" % n
            result = self.fake.wait_result(self.fake.add_event({"op": "context"}, trace_id=trace))
            self.assertEqual(result.kind, "response", result.body)
            self.assertEqual(result.json()["trace_env"], trace, op)

    def test_response_failure_is_posted_as_an_error_document(self):
        self.start_cpp()
        result = self.invoke({"op": "fail"})
        self.assertEqual(result.kind, "error")
        self.assertEqual(result.json(), {"errorMessage": 'failed "on" purpose\n', "errorType": "MyError",
                                         "stackTrace": []})
        self.assertEqual(result.headers.get("lambda-runtime-function-error-type"), "MyError")

    def test_an_exception_becomes_an_error_named_after_its_class(self):
        self.start_cpp()
        result = self.invoke({"op": "throw"})
        self.assertEqual(result.kind, "error")
        self.assertEqual(result.json()["errorType"], "std::runtime_error")
        self.assertEqual(result.json()["errorMessage"], "thrown on purpose")
        self.assertEqual(result.headers.get("lambda-runtime-function-error-type"), "std::runtime_error")
        # ...and the runtime keeps serving.
        self.assertResponse(self.invoke({"after": True}), {"after": True})

    def test_init_error_posts_to_the_init_endpoint(self):
        self.start_cpp(env={"NIMBUS_TEST_INIT_ERROR": "1"})
        error = self.fake.wait_init_error()
        self.assertEqual(error.json()["errorType"], "Runtime.ConfigError")
        self.assertEqual(error.headers.get("lambda-runtime-function-error-type"), "Runtime.ConfigError")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_prints_reach_the_log_before_the_response_is_posted(self):
        self.start_cpp()
        self.assertResponse(self.invoke({"op": "print"}), 1)
        self.assertEqual(self.stdout(), "no newline")


@NEEDS_FUNCTION
class CppSdkOverHttpTest(CppSdkCases, HttpFallbackCases, RuntimeTestCase):
    def test_several_invocations_share_one_tcp_connection(self):
        self.start_cpp()
        for i in range(25):
            self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.assertEqual(self.fake.connections, 1)

    def test_the_runtime_reconnects_when_the_connection_drops(self):
        self.fake.drop_connection_after_result = True
        self.start_cpp()
        for i in range(3):
            self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.assertGreaterEqual(self.fake.connections, 3)

    def test_chunked_events_are_decoded(self):
        self.fake.chunked_events = True
        self.start_cpp()
        for size in (1, 5000, 200000):
            self.assertResponse(self.invoke({"long": "x" * size}), {"long": "x" * size})

    def test_a_missing_runtime_api_variable_exits_with_a_message(self):
        self.start_cpp(env={"AWS_LAMBDA_RUNTIME_API": None})
        self.assertNotEqual(self.wait_exit(), 0)
        self.assertIn("AWS_LAMBDA_RUNTIME_API is not set", self.stderr())

    def test_an_unreachable_runtime_api_exits_with_a_message(self):
        # A port that was just free: nothing listens there.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.start_cpp(runtime_api="127.0.0.1:%d" % port)
        self.assertEqual(self.wait_exit(), 1)
        self.assertIn("cannot connect to the Runtime API at 127.0.0.1:%d" % port, self.stderr())


@NEEDS_FUNCTION
class CppSdkOverChannelTest(CppSdkCases, ChannelCases, ChannelRuntimeTestCase):
    pass


if __name__ == "__main__":
    unittest.main()
