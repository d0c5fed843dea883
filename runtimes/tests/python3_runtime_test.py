#!/usr/bin/env python3
"""Conformance tests for runtimes/python3/bootstrap against a fake daemon.

Each test writes a handler into a temp LAMBDA_TASK_ROOT, starts the real bootstrap the way the
daemon does and checks what it sends back: results, Lambda's context, error documents, init
errors. PythonRuntimeCases run over both transports: the HTTP Runtime API (fake_runtime_api.py,
where all invocations must share one keep-alive TCP connection) and the runtime channel
(fake_runtime_channel.py, with the channel's own cases).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import RUNTIMES_DIR, TIMEOUT_MS, HttpFallbackCases, RuntimeTestCase  # noqa: E402
from fake_runtime_channel import (ChannelCases, ChannelRuntimeTestCase, PrimedCases,  # noqa: E402
                                  PrimedChannelRuntimeTestCase)

BOOTSTRAP = os.path.join(RUNTIMES_DIR, "python3", "bootstrap")

CONTEXT_HANDLER = """
import os

def handler(event, context):
    cc = context.client_context
    return {
        "event": event,
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "custom": cc.custom if cc else None,
        "installation_id": cc.client.installation_id if cc and cc.client else None,
        "identity_id": context.identity.cognito_identity_id if context.identity else None,
    }
"""

ECHO = ("def handler(event, context):\n"
        "    if event == {'op': 'throw'}:\n"
        "        raise ValueError('thrown on purpose')\n"
        "    return event\n")


class PythonRuntimeCases:
    """Cases for both transports; mixed into a RuntimeTestCase at the end of the file."""

    def start_py(self, handler, files, **kwargs):
        return self.start(BOOTSTRAP, handler, files, **kwargs)

    def start_echo(self, **kwargs):
        return self.start_py("app.handler", {"app.py": ECHO}, **kwargs)

    def start_init_failure(self):
        return self.start_py("app.handler", {})

    def test_a_returned_value_is_posted_as_json_to_the_response_endpoint(self):
        self.start_py("app.handler", {"app.py": "def handler(event, context):\n"
                                                "    return {'got': event, 'text': 'h\\u00e9'}\n"})
        result = self.invoke({"a": [1, 2]})
        self.assertResponse(result, {"got": {"a": [1, 2]}, "text": "h\u00e9"})

    def test_the_handler_sees_lambdas_context_fields(self):
        self.start_py("app.handler", {"app.py": CONTEXT_HANDLER})
        deadline = int(time.time() * 1000) + TIMEOUT_MS
        request_id = self.fake.add_event(
            {"k": 1}, deadline_ms=deadline, trace_id="Root=1-abc;Sampled=1",
            client_context={"custom": {"c": "v"}, "client": {"installation_id": "inst-1"}},
            cognito_identity={"cognitoIdentityId": "id-9", "cognitoIdentityPoolId": "pool-1"})
        result = self.fake.wait_result(request_id)
        self.assertEqual(result.kind, "response", result.body)
        doc = result.json()
        self.assertEqual(doc["event"], {"k": 1})
        self.assertEqual(doc["aws_request_id"], request_id)
        self.assertEqual(doc["function_name"], "test-fn")
        self.assertEqual(doc["function_version"], "7")
        self.assertEqual(doc["invoked_function_arn"], "arn:aws:lambda:local:000000000000:function:test-fn")
        self.assertEqual(doc["memory_limit_in_mb"], 256)
        self.assertEqual(doc["log_group_name"], "/aws/lambda/test-fn")
        self.assertEqual(doc["log_stream_name"], "2025/01/01/[7]abcdef")
        self.assertEqual(doc["trace"], "Root=1-abc;Sampled=1")
        self.assertEqual(doc["custom"], {"c": "v"})
        self.assertEqual(doc["installation_id"], "inst-1")
        self.assertEqual(doc["identity_id"], "id-9")
        # Remaining time is measured against the deadline header: at most the timeout, and
        # not much less (the handler runs right after the event is served).
        self.assertLessEqual(doc["remaining"], TIMEOUT_MS)
        self.assertGreater(doc["remaining"], TIMEOUT_MS - 3000)

    def test_remaining_time_is_zero_once_the_deadline_has_passed(self):
        self.start_py("app.handler", {"app.py": CONTEXT_HANDLER})
        result = self.invoke({}, deadline_ms=int(time.time() * 1000) - 1000)
        self.assertEqual(result.json()["remaining"], 0)

    def test_an_exception_is_posted_as_an_error_named_after_its_class(self):
        self.start_py("app.handler", {"app.py": "def helper():\n"
                                                "    raise ValueError('bad input 42')\n"
                                                "def handler(event, context):\n"
                                                "    helper()\n"})
        request_id = self.fake.add_event({})
        result = self.fake.wait_result(request_id)
        self.assertEqual(result.kind, "error")
        doc = result.json()
        self.assertEqual(doc["errorType"], "ValueError")
        self.assertEqual(doc["errorMessage"], "bad input 42")
        self.assertEqual(doc["requestId"], request_id)
        self.assertEqual(result.headers.get("lambda-runtime-function-error-type"), "ValueError")
        # Like Lambda: the trace starts in user code and lists each frame as formatted text.
        self.assertEqual(len(doc["stackTrace"]), 2, doc["stackTrace"])
        self.assertIn("app.py", doc["stackTrace"][0])
        self.assertIn("in handler", doc["stackTrace"][0])
        self.assertIn("in helper", doc["stackTrace"][1])
        self.assertNotIn("bootstrap", "".join(doc["stackTrace"]))
        self.assertIn("[ERROR] ValueError: bad input 42", self.stderr())

    def test_the_runtime_keeps_serving_after_an_exception(self):
        self.start_py("app.handler", {"app.py": "def handler(event, context):\n"
                                                "    if event['fail']: raise KeyError('x')\n"
                                                "    return 'fine'\n"})
        self.assertEqual(self.invoke({"fail": True}).kind, "error")
        self.assertResponse(self.invoke({"fail": False}), "fine")

    def test_a_result_that_cannot_be_serialised_is_a_marshal_error(self):
        self.start_py("app.handler", {"app.py": "def handler(event, context):\n"
                                                "    return {'s': {1, 2}}\n"})
        result = self.invoke({})
        self.assertEqual(result.kind, "error")
        self.assertEqual(result.json()["errorType"], "Runtime.MarshalError")
        self.assertIn("Unable to marshal response", result.json()["errorMessage"])
        self.assertIn("set", result.json()["errorMessage"])

    def test_decimals_and_none_serialise_like_lambda(self):
        self.start_py("app.handler", {"app.py": "from decimal import Decimal\n"
                                                "def handler(event, context):\n"
                                                "    return [Decimal('2'), Decimal('1.5'), None]\n"})
        self.assertResponse(self.invoke({}), [2, 1.5, None])

    def test_a_missing_module_is_an_import_module_error_at_init(self):
        self.start_py("app.handler", {})
        error = self.fake.wait_init_error()
        doc = error.json()
        self.assertEqual(doc["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(doc["errorMessage"], "Unable to import module 'app': No module named 'app'")
        self.assertEqual(error.headers.get("lambda-runtime-function-error-type"), "Runtime.ImportModuleError")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_a_missing_function_is_a_handler_not_found_error_at_init(self):
        self.start_py("app.handler", {"app.py": "def other(event, context):\n    return 1\n"})
        doc = self.fake.wait_init_error().json()
        self.assertEqual(doc["errorType"], "Runtime.HandlerNotFound")
        self.assertEqual(doc["errorMessage"], "Handler 'handler' missing on module 'app'")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_a_syntax_error_is_a_user_code_syntax_error_at_init(self):
        self.start_py("app.handler", {"app.py": "def handler(event, context)\n    return 1\n"})
        doc = self.fake.wait_init_error().json()
        self.assertEqual(doc["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertTrue(doc["errorMessage"].startswith("Syntax error in module 'app'"), doc)
        self.assertNotEqual(self.wait_exit(), 0)

    def test_a_handler_without_a_dot_is_a_malformed_handler_name(self):
        self.start_py("app", {"app.py": ""})
        doc = self.fake.wait_init_error().json()
        self.assertEqual(doc["errorType"], "Runtime.MalformedHandlerName")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_an_exception_while_importing_is_reported_with_its_class(self):
        self.start_py("app.handler", {"app.py": "raise RuntimeError('no config')\n"})
        doc = self.fake.wait_init_error().json()
        self.assertEqual(doc["errorType"], "RuntimeError")
        self.assertEqual(doc["errorMessage"], "no config")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_slashed_and_dotted_module_paths_find_the_handler(self):
        files = {"pkg/__init__.py": "", "pkg/sub/__init__.py": "",
                 "pkg/sub/mod.py": "def fn(event, context):\n    return 'deep'\n"}
        self.start_py("pkg/sub/mod.fn", files)
        self.assertResponse(self.invoke({}), "deep")
        self.proc.kill()
        self.proc.wait()
        self.start_py("pkg.sub.mod.fn", None)
        self.assertResponse(self.invoke({}), "deep")

    def test_the_task_root_comes_first_on_sys_path(self):
        # A module named like a standard library module must come from the package.
        self.start_py("app.handler", {"app.py": "import colorsys\n"
                                                "def handler(event, context):\n"
                                                "    return colorsys.MINE\n",
                                      "colorsys.py": "MINE = 'from task root'\n"})
        self.assertResponse(self.invoke({}), "from task root")

    def test_prints_reach_the_log_before_the_response_is_posted(self):
        self.start_py("app.handler", {"app.py": "import sys\n"
                                                "def handler(event, context):\n"
                                                "    print('line one')\n"
                                                "    sys.stdout.write('no newline')\n"
                                                "    sys.stderr.write('err text')\n"
                                                "    return 1\n"})
        self.assertResponse(self.invoke({}), 1)
        # The runtime is now blocked on the next event: only a flush before the POST can
        # have written the unterminated line.
        self.assertEqual(self.stdout(), "line one\nno newline")
        self.assertIn("err text", self.stderr())

    def test_an_event_that_is_not_json_is_an_unmarshal_error(self):
        self.start_py("app.handler", {"app.py": "def handler(event, context):\n    return event\n"})
        result = self.fake.wait_result(self.fake.add_event(None, raw_body=b"{not json"))
        self.assertEqual(result.kind, "error")
        self.assertEqual(result.json()["errorType"], "Runtime.UnmarshalError")


class PythonChannelCases:
    """Cases that need many invocations, run over the runtime channel only: the fake HTTP
    Runtime API serves queued events one per ~90 ms, the channel in well under 1 ms. The code
    under test is the same for both transports."""

    def start_py(self, handler, files, **kwargs):
        return self.start(BOOTSTRAP, handler, files, **kwargs)

    def test_each_invocation_sees_its_own_trace_id_in_os_environ_and_in_libc(self):
        # Past the runtime's first 1000 invocations (os.environ) into its own environment
        # entry, with trace ids that grow past that entry's first buffer and shrink again; a
        # handler that deletes the variable does not stop the next invocation from seeing its own.
        # From then on the C entry stays where it is: setenv() would leave a new copy each time.
        handler = ("import ctypes, os\n"
                   "getenv = ctypes.CDLL(None).getenv\n"
                   "getenv.restype = ctypes.c_void_p\n"
                   "def handler(event, context):\n"
                   "    at = getenv(b'_X_AMZN_TRACE_ID')\n"
                   "    seen = [os.environ.get('_X_AMZN_TRACE_ID'), ctypes.string_at(at).decode() if at else '', at]\n"
                   "    if event.get('delete'):\n"
                   "        del os.environ['_X_AMZN_TRACE_ID']\n"
                   "    return seen\n")
        self.start_py("app.handler", {"app.py": handler})
        traces = ["Root=1-%08x;Sampled=1" % i for i in range(1000)]
        traces += ["Root=1-" + "b" * 600, "Root=1-c", "Root=1-d", "Root=1-" + "e" * 300, "Root=1-f"]
        ids = [self.fake.add_event({"delete": True} if trace == "Root=1-c" else {}, trace_id=trace)
               for trace in traces]
        addresses = []
        for i, (request_id, trace) in enumerate(zip(ids, traces)):
            result = self.fake.wait_result(request_id)
            self.assertEqual(result.kind, "response", result.body)
            seen = result.json()
            self.assertEqual(seen[:2], [trace, trace], "invocation %d" % i)
            addresses.append(seen[2])
        self.assertEqual(len(set(addresses[-5:])), 1, addresses[-5:])


class PythonRuntimeOverHttpTest(PythonRuntimeCases, HttpFallbackCases, RuntimeTestCase):
    def test_several_invocations_share_one_tcp_connection(self):
        self.start_py("app.handler", {"app.py": "def handler(event, context):\n    return event\n"})
        for i in range(25):
            self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.assertEqual(self.fake.connections, 1)

    def test_the_runtime_reconnects_when_the_connection_drops(self):
        self.fake.drop_connection_after_result = True
        self.start_py("app.handler", {"app.py": "def handler(event, context):\n    return event\n"})
        for i in range(3):
            self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.assertGreaterEqual(self.fake.connections, 3)

    def test_chunked_events_are_decoded(self):
        self.fake.chunked_events = True
        self.start_py("app.handler", {"app.py": "def handler(event, context):\n    return event\n"})
        self.assertResponse(self.invoke({"long": "x" * 5000}), {"long": "x" * 5000})

    def test_a_missing_runtime_api_variable_exits_with_a_message(self):
        self.start_py("app.handler", {"app.py": ""}, env={"AWS_LAMBDA_RUNTIME_API": None})
        self.assertNotEqual(self.wait_exit(), 0)
        self.assertIn("AWS_LAMBDA_RUNTIME_API is not set", self.stderr())


class PythonRuntimeOverChannelTest(PythonRuntimeCases, PythonChannelCases, ChannelCases, ChannelRuntimeTestCase):
    pass


class PythonRuntimePrimedTest(PythonRuntimeCases, PythonChannelCases, PrimedCases, PrimedChannelRuntimeTestCase):
    BOOTSTRAP = BOOTSTRAP

    def start_env_probe(self, env):
        return self.start_py("app.handler", {"app.py": "import subprocess\n"
                                                       "def handler(event, context):\n"
                                                       "    return subprocess.run(['env'], capture_output=True, text=True).stdout\n"},
                             env=env)

    def start_tz_offset(self, env):
        return self.start_py("app.handler", {"app.py": "import time\n"
                                                       "def handler(event, context):\n"
                                                       "    return time.localtime().tm_gmtoff // 60\n"}, env=env)


if __name__ == "__main__":
    unittest.main()
