#!/usr/bin/env python3
"""Conformance tests for runtimes/nodejs/bootstrap against a fake daemon.

Each test writes a handler into a temp LAMBDA_TASK_ROOT, starts the real bootstrap the way the
daemon does and checks what it sends back: async and callback results, Lambda's Node.js
context, error documents, init errors, ES modules. NodeRuntimeCases run over both transports:
the HTTP Runtime API (fake_runtime_api.py, where all calls must share one keep-alive TCP
connection) and the runtime channel (fake_runtime_channel.py, with the channel's own cases).
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import RUNTIMES_DIR, TIMEOUT_MS, HttpFallbackCases, RuntimeTestCase  # noqa: E402
from fake_runtime_channel import (ChannelCases, ChannelRuntimeTestCase, PrimedCases,  # noqa: E402
                                  PrimedChannelRuntimeTestCase)

BOOTSTRAP = os.path.join(RUNTIMES_DIR, "nodejs", "bootstrap")

CONTEXT_HANDLER = """
exports.handler = async (event, context) => ({
  event,
  awsRequestId: context.awsRequestId,
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  waits: context.callbackWaitsForEmptyEventLoop,
  trace: process.env._X_AMZN_TRACE_ID,
  clientContext: context.clientContext,
  identity: context.identity,
});
"""

ECHO = "exports.handler = async (event) => event;\n"
# Echoes the event; fails the invocation for {"op": "throw"} (the channel cases use both).
ECHO_OR_THROW = ("exports.handler = async (event) => {\n"
                 "  if (event && event.op === 'throw') throw new Error('thrown on purpose');\n"
                 "  return event;\n};\n")


class NodeRuntimeCases:
    """Cases for both transports; mixed into a RuntimeTestCase at the end of the file."""

    def start_node(self, handler, files, **kwargs):
        return self.start(BOOTSTRAP, handler, files, **kwargs)

    def start_echo(self, **kwargs):
        return self.start_node("index.handler", {"index.js": ECHO_OR_THROW}, **kwargs)

    def start_init_failure(self):
        return self.start_node("index.handler", {})

    def test_each_invocation_sees_its_own_trace_id_wherever_it_reads_the_environment(self):
        # process.env's entry for the trace id is held by the runtime (not setenv), so every way
        # a handler reads the environment must see it: a property, `in`, the keys, a copy, a
        # child process; and a handler that deletes or overwrites it changes only its own view.
        handler = ("const { execFileSync } = require('child_process');\n"
                   "exports.handler = async (event) => {\n"
                   "  const env = process.env;\n"
                   "  const seen = [env._X_AMZN_TRACE_ID, '_X_AMZN_TRACE_ID' in env,\n"
                   "    Object.keys(env).filter((k) => k === '_X_AMZN_TRACE_ID').length, { ...env }._X_AMZN_TRACE_ID,\n"
                   "    execFileSync('/bin/sh', ['-c', 'printf %s \"$_X_AMZN_TRACE_ID\"']).toString()];\n"
                   "  if (event.op === 'delete') delete env._X_AMZN_TRACE_ID;\n"
                   "  if (event.op === 'overwrite') env._X_AMZN_TRACE_ID = 42;\n"
                   "  if (event.op === 'check') seen.push(env._X_AMZN_TRACE_ID, '_X_AMZN_TRACE_ID' in env);\n"
                   "  return seen;\n"
                   "};\n")
        self.start_node("index.handler", {"index.js": handler})
        for op, trace in (("delete", "Root=1-a"), ("overwrite", "Root=1-" + "b" * 600), ("", "Root=1-c"),
                          ("check", "Root=1-d")):
            request_id = self.fake.add_event({"op": op}, trace_id=trace)
            result = self.fake.wait_result(request_id)
            self.assertEqual(result.kind, "response", result.body)
            expected = [trace, True, 1, trace, trace] + ([trace, True] if op == "check" else [])
            self.assertEqual(result.json(), expected, op)

    def test_a_handler_that_replaces_process_env_still_sees_each_invocations_trace_id(self):
        # `process.env = {...process.env}` is a common pattern: the runtime then sets the trace id
        # on the handler's object, as Lambda's does; `process.env = null` breaks only that handler.
        handler = ("const { execFileSync } = require('child_process');\n"
                   "exports.handler = async (event) => {\n"
                   "  if (event.op === 'replace') { process.env = { ...process.env, EXTRA: '1' }; return 'replaced'; }\n"
                   "  if (event.op === 'null') { process.env = null; return 'nulled'; }\n"
                   "  if (event.op === 'empty') { process.env = {}; return 'emptied'; }\n"
                   "  return [process.env._X_AMZN_TRACE_ID, process.env.EXTRA || null,\n"
                   "    execFileSync('/bin/sh', ['-c', 'printf %s \"$_X_AMZN_TRACE_ID\"'], { env: process.env }).toString()];\n"
                   "};\n")
        self.start_node("index.handler", {"index.js": handler})
        for op, extra in (("replace", "1"), ("empty", None)):
            self.assertEqual(self.fake.wait_result(self.fake.add_event({"op": op}, trace_id="Root=1-x")).kind, "response")
            for n in range(2):
                trace = "Root=1-%s-%d" % (op, n)
                result = self.fake.wait_result(self.fake.add_event({}, trace_id=trace))
                self.assertEqual(result.kind, "response", result.body)
                self.assertEqual(result.json(), [trace, extra, trace], op)
        self.assertEqual(self.fake.wait_result(self.fake.add_event({"op": "null"})).kind, "response")
        result = self.fake.wait_result(self.fake.add_event({}, trace_id="Root=1-after-null"))
        self.assertEqual(result.kind, "error", result.body)  # the handler's own TypeError, reported
        self.assertEqual(self.fake.wait_result(self.fake.add_event({"op": "replace"})).kind, "response")

    def test_an_async_handlers_resolved_value_is_the_response(self):
        self.start_node("index.handler", {"index.js": "exports.handler = async (event) => {\n"
                                                      "  await new Promise((r) => setTimeout(r, 10));\n"
                                                      "  return { got: event };\n};\n"})
        self.assertResponse(self.invoke({"a": 1}), {"got": {"a": 1}})

    def test_a_callback_handlers_result_is_the_response(self):
        self.start_node("index.handler", {"index.js": "exports.handler = (event, context, callback) => {\n"
                                                      "  setTimeout(() => callback(null, { cb: event.n }), 10);\n"
                                                      "};\n"})
        self.assertResponse(self.invoke({"n": 5}), {"cb": 5})
        self.assertResponse(self.invoke({"n": 6}), {"cb": 6})

    def test_a_callback_waits_for_the_event_loop_to_empty_by_default(self):
        self.start_node("index.handler", {"index.js": "exports.handler = (event, context, callback) => {\n"
                                                      "  setTimeout(() => console.log('timer fired'), 300);\n"
                                                      "  callback(null, 'early');\n"
                                                      "};\n"})
        self.assertResponse(self.invoke({}), "early")
        self.assertIn("timer fired", self.stdout())

    def test_a_callback_does_not_wait_when_the_context_says_so(self):
        self.start_node("index.handler", {"index.js": "exports.handler = (event, context, callback) => {\n"
                                                      "  context.callbackWaitsForEmptyEventLoop = false;\n"
                                                      "  setTimeout(() => console.log('timer fired'), 10000);\n"
                                                      "  callback(null, 'early');\n"
                                                      "};\n"})
        started = time.monotonic()
        self.assertResponse(self.invoke({}), "early")
        # Far below the timer, with room for a slow start of node on a loaded machine.
        self.assertLess(time.monotonic() - started, 6.0)
        self.assertNotIn("timer fired", self.stdout())

    def test_a_handler_that_never_calls_back_answers_null_once_idle(self):
        self.start_node("index.handler", {"index.js": "exports.handler = (event, context, callback) => {\n"
                                                      "  console.log('did nothing');\n"
                                                      "};\n"})
        self.assertResponse(self.invoke({}), None)

    def test_the_handler_sees_lambdas_context_fields(self):
        self.start_node("index.handler", {"index.js": CONTEXT_HANDLER})
        deadline = int(time.time() * 1000) + TIMEOUT_MS
        request_id = self.fake.add_event(
            {"k": 1}, deadline_ms=deadline, trace_id="Root=1-abc;Sampled=1",
            client_context={"custom": {"c": "v"}}, cognito_identity={"cognitoIdentityId": "id-9"})
        result = self.fake.wait_result(request_id)
        self.assertEqual(result.kind, "response", result.body)
        doc = result.json()
        self.assertEqual(doc["event"], {"k": 1})
        self.assertEqual(doc["awsRequestId"], request_id)
        self.assertEqual(doc["functionName"], "test-fn")
        self.assertEqual(doc["functionVersion"], "7")
        self.assertEqual(doc["invokedFunctionArn"], "arn:aws:lambda:local:000000000000:function:test-fn")
        self.assertEqual(doc["memoryLimitInMB"], "256")  # a string, as on Lambda
        self.assertEqual(doc["logGroupName"], "/aws/lambda/test-fn")
        self.assertEqual(doc["logStreamName"], "2025/01/01/[7]abcdef")
        self.assertIs(doc["waits"], True)
        self.assertEqual(doc["trace"], "Root=1-abc;Sampled=1")
        self.assertEqual(doc["clientContext"], {"custom": {"c": "v"}})
        self.assertEqual(doc["identity"], {"cognitoIdentityId": "id-9"})
        self.assertLessEqual(doc["remaining"], TIMEOUT_MS)
        self.assertGreater(doc["remaining"], TIMEOUT_MS - 3000)

    def test_a_thrown_error_is_posted_with_type_message_and_trace(self):
        self.start_node("index.handler", {"index.js": "exports.handler = async () => {\n"
                                                      "  null.boom;\n};\n"})
        request_id = self.fake.add_event({})
        result = self.fake.wait_result(request_id)
        self.assertEqual(result.kind, "error")
        doc = result.json()
        self.assertEqual(doc["errorType"], "TypeError")
        self.assertIn("Cannot read properties of null", doc["errorMessage"])
        self.assertTrue(doc["trace"][0].startswith("TypeError: Cannot read"), doc["trace"])
        self.assertTrue(any("index.js" in line for line in doc["trace"]), doc["trace"])
        self.assertEqual(result.headers.get("lambda-runtime-function-error-type"), "TypeError")
        self.assertIn("TypeError", self.stderr())

    def test_a_callback_error_and_a_custom_error_class_keep_their_names(self):
        self.start_node("index.handler", {"index.js": "class QuotaError extends Error {\n"
                                                      "  constructor(m) { super(m); this.name = 'QuotaError'; }\n}\n"
                                                      "exports.handler = (event, context, cb) => cb(new QuotaError('over'));\n"})
        doc = self.invoke({}).json()
        self.assertEqual(doc["errorType"], "QuotaError")
        self.assertEqual(doc["errorMessage"], "over")

    def test_a_thrown_string_is_reported_with_its_type(self):
        self.start_node("index.handler", {"index.js": "exports.handler = async () => { throw 'plain'; };\n"})
        result = self.invoke({})
        self.assertEqual(result.kind, "error")
        self.assertEqual(result.json(), {"errorType": "string", "errorMessage": "plain", "trace": []})

    def test_the_runtime_keeps_serving_after_an_error(self):
        self.start_node("index.handler", {"index.js": "exports.handler = async (e) => {\n"
                                                      "  if (e.fail) throw new Error('no'); return 'fine';\n};\n"})
        self.assertEqual(self.invoke({"fail": True}).kind, "error")
        self.assertResponse(self.invoke({"fail": False}), "fine")

    def test_a_circular_result_is_a_marshal_error(self):
        self.start_node("index.handler", {"index.js": "exports.handler = async () => {\n"
                                                      "  const a = {}; a.self = a; return a;\n};\n"})
        result = self.invoke({})
        self.assertEqual(result.kind, "error")
        self.assertEqual(result.json()["errorType"], "Runtime.MarshalError")

    def test_an_mjs_module_is_imported_as_an_es_module(self):
        self.start_node("app.handler", {"app.mjs": "export const handler = async (event) => ({ esm: import.meta.url.endsWith('app.mjs') });\n"})
        self.assertResponse(self.invoke({}), {"esm": True})

    def test_a_js_file_in_a_type_module_package_is_an_es_module(self):
        self.start_node("src/app.handler", {"package.json": '{"type": "module"}',
                                            "src/app.js": "export async function handler() { return typeof require; }\n"})
        self.assertResponse(self.invoke({}), "undefined")

    def test_a_cjs_file_is_required(self):
        self.start_node("lib/app.handler", {"lib/app.cjs": "module.exports.handler = async () => typeof require;\n"})
        self.assertResponse(self.invoke({}), "function")

    def test_a_missing_module_is_an_import_module_error_at_init(self):
        self.start_node("index.handler", {})
        error = self.fake.wait_init_error()
        doc = error.json()
        self.assertEqual(doc["errorType"], "Runtime.ImportModuleError")
        self.assertEqual(doc["errorMessage"], "Error: Cannot find module 'index'")
        self.assertEqual(error.headers.get("lambda-runtime-function-error-type"), "Runtime.ImportModuleError")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_a_missing_dependency_of_the_module_is_an_import_module_error(self):
        self.start_node("index.handler", {"index.js": "require('left-pad-that-is-not-here');\n"
                                                      "exports.handler = async () => 1;\n"})
        doc = self.fake.wait_init_error().json()
        self.assertEqual(doc["errorType"], "Runtime.ImportModuleError")
        self.assertIn("left-pad-that-is-not-here", doc["errorMessage"])
        self.assertNotEqual(self.wait_exit(), 0)

    def test_a_missing_export_is_a_handler_not_found_error_at_init(self):
        self.start_node("index.handler", {"index.js": "exports.other = async () => 1;\n"})
        doc = self.fake.wait_init_error().json()
        self.assertEqual(doc["errorType"], "Runtime.HandlerNotFound")
        self.assertEqual(doc["errorMessage"], "index.handler is undefined or not exported")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_a_syntax_error_is_a_user_code_syntax_error_at_init(self):
        self.start_node("index.handler", {"index.js": "exports.handler = async () => {;\n"})
        doc = self.fake.wait_init_error().json()
        self.assertEqual(doc["errorType"], "Runtime.UserCodeSyntaxError")
        self.assertTrue(doc["errorMessage"].startswith("SyntaxError: "), doc)
        self.assertNotEqual(self.wait_exit(), 0)

    def test_an_uncaught_exception_fails_the_invocation_and_ends_the_instance(self):
        self.start_node("index.handler", {"index.js": "exports.handler = (e, c, cb) => {\n"
                                                      "  setTimeout(() => { throw new RangeError('late'); }, 5);\n};\n"})
        result = self.invoke({})
        self.assertEqual(result.kind, "error")
        self.assertEqual(result.json()["errorType"], "RangeError")
        self.assertNotEqual(self.wait_exit(), 0)

    def test_prints_reach_the_log_before_the_response_is_posted(self):
        self.start_node("index.handler", {"index.js": "exports.handler = async () => {\n"
                                                      "  console.log('line one');\n"
                                                      "  process.stdout.write('no newline');\n"
                                                      "  return 1;\n};\n"})
        self.assertResponse(self.invoke({}), 1)
        self.assertEqual(self.stdout(), "line one\nno newline")


class NodeRuntimeOverHttpTest(NodeRuntimeCases, HttpFallbackCases, RuntimeTestCase):
    def test_several_invocations_share_one_tcp_connection(self):
        self.start_node("index.handler", {"index.js": ECHO})
        for i in range(25):
            self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.assertEqual(self.fake.connections, 1)

    def test_callback_handlers_also_share_one_tcp_connection(self):
        self.start_node("index.handler", {"index.js": "exports.handler = (e, c, cb) => cb(null, e);\n"})
        for i in range(10):
            self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.assertEqual(self.fake.connections, 1)

    def test_the_runtime_reconnects_when_the_connection_drops(self):
        self.fake.drop_connection_after_result = True
        self.start_node("index.handler", {"index.js": ECHO})
        for i in range(3):
            self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.assertGreaterEqual(self.fake.connections, 3)

    def test_chunked_events_are_decoded(self):
        self.fake.chunked_events = True
        self.start_node("index.handler", {"index.js": ECHO})
        self.assertResponse(self.invoke({"long": "x" * 5000}), {"long": "x" * 5000})

    def test_a_missing_runtime_api_variable_exits_with_a_message(self):
        self.start_node("index.handler", {"index.js": ECHO}, env={"AWS_LAMBDA_RUNTIME_API": None})
        self.assertNotEqual(self.wait_exit(), 0)
        self.assertIn("AWS_LAMBDA_RUNTIME_API is not set", self.stderr())


class NodeRuntimeOverChannelTest(NodeRuntimeCases, ChannelCases, ChannelRuntimeTestCase):
    pass


class NodeRuntimePrimedTest(NodeRuntimeCases, PrimedCases, PrimedChannelRuntimeTestCase):
    BOOTSTRAP = BOOTSTRAP

    def start_env_probe(self, env):
        return self.start_node("index.handler", {"index.js": "const cp = require('child_process');\n"
                                                             "exports.handler = async () => cp.execSync('env').toString();\n"},
                               env=env)

    def start_tz_offset(self, env):
        return self.start_node("index.handler", {"index.js": "exports.handler = async () => "
                                                             "-new Date().getTimezoneOffset();\n"}, env=env)


if __name__ == "__main__":
    unittest.main()
