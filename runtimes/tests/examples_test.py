#!/usr/bin/env python3
"""Runs every example in examples/ on its real runtime against a fake Runtime API; the hello
and noop examples (the benchmark's functions) also over the runtime channel.

Python and Node.js examples run through runtimes/*/bootstrap with the example directory copied
as LAMBDA_TASK_ROOT; the C++ examples are the binaries CMake builds from their main.cpp
(NIMBUS_EXAMPLE_HELLO_CPP, NIMBUS_EXAMPLE_NOOP_CPP). repo-alert posts to a fake chat webhook
started by the test.
"""

import base64
import hashlib
import hmac
import json
import os
import shutil
import sys
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import RUNTIMES_DIR, SOURCE_ROOT, RuntimeTestCase  # noqa: E402
from fake_runtime_channel import ChannelRuntimeTestCase  # noqa: E402

EXAMPLES = os.environ.get("NIMBUS_EXAMPLES_DIR", os.path.join(SOURCE_ROOT, "examples"))
PYTHON = os.path.join(RUNTIMES_DIR, "python3", "bootstrap")
NODE = os.path.join(RUNTIMES_DIR, "nodejs", "bootstrap")
HELLO_CPP = os.environ.get("NIMBUS_EXAMPLE_HELLO_CPP", "")
NOOP_CPP = os.environ.get("NIMBUS_EXAMPLE_NOOP_CPP", "")


def http_event(method, path, path_parameters=None, headers=None, body=None, is_base64=False):
    """An API Gateway HTTP API v2.0 event, as the gateway sends it."""
    return {
        "version": "2.0",
        "routeKey": "%s %s" % (method, path),
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers or {},
        "pathParameters": path_parameters or {},
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "127.0.0.1", "userAgent": "test"},
                           "requestId": "req-1"},
        "body": body,
        "isBase64Encoded": is_base64,
    }


class ExampleTestCase(RuntimeTestCase):
    def start_example(self, name, executable, handler, env=None):
        shutil.rmtree(self.task_root)
        shutil.copytree(os.path.join(EXAMPLES, name), self.task_root)
        return self.start(executable, handler, env=env)


class HelloExamplesTest(ExampleTestCase):
    def check_hello(self, path_prefix):
        result = self.invoke(http_event("GET", path_prefix + "/ada", {"name": "ada"}))
        self.assertEqual(result.kind, "response", result.body)
        doc = result.json()
        self.assertEqual(doc["statusCode"], 200)
        self.assertEqual(doc["headers"]["content-type"], "application/json")
        self.assertEqual(json.loads(doc["body"]), {"message": "hello ada"})
        self.assertResponse(self.invoke({"name": 'b"o b'}), {"message": 'hello b"o b'})

    def test_hello_python_greets_by_path_parameter_and_by_direct_event(self):
        self.start_example("hello-python", PYTHON, "app.handler")
        self.check_hello("/hello")

    def test_hello_node_greets_by_path_parameter_and_by_direct_event(self):
        self.start_example("hello-node", NODE, "index.handler")
        self.check_hello("/hello-node")

    @unittest.skipUnless(HELLO_CPP and os.path.exists(HELLO_CPP), "set NIMBUS_EXAMPLE_HELLO_CPP (ctest does)")
    def test_hello_cpp_greets_by_path_parameter_and_by_direct_event(self):
        self.start_example("hello-cpp", HELLO_CPP, "bootstrap")
        self.check_hello("/hello-cpp")


class NoopExamplesTest(ExampleTestCase):
    OK = {"statusCode": 200, "body": "ok"}

    def check_noop(self):
        for _ in range(3):
            self.assertResponse(self.invoke(http_event("GET", "/noop/x")), self.OK)
        if self.TRANSPORT == "http":
            self.assertEqual(self.fake.connections, 1)

    def test_noop_python_answers_ok(self):
        self.start_example("noop-python", PYTHON, "app.handler")
        self.check_noop()

    def test_noop_node_answers_ok(self):
        self.start_example("noop-node", NODE, "index.handler")
        self.check_noop()

    @unittest.skipUnless(NOOP_CPP and os.path.exists(NOOP_CPP), "set NIMBUS_EXAMPLE_NOOP_CPP (ctest does)")
    def test_noop_cpp_answers_ok(self):
        self.start_example("noop-cpp", NOOP_CPP, "bootstrap")
        self.check_noop()


class HelloExamplesOverChannelTest(HelloExamplesTest, ChannelRuntimeTestCase):
    pass


class NoopExamplesOverChannelTest(NoopExamplesTest, ChannelRuntimeTestCase):
    pass


class TmpEnvExampleTest(ExampleTestCase):
    def test_tmp_env_counts_invocations_in_scratch_and_reads_its_greeting(self):
        scratch = os.path.join(self.tmp, "scratch")
        os.mkdir(scratch)
        self.start_example("tmp-env", NODE, "index.handler",
                           env={"TMPDIR": scratch, "GREETING": "hi there"})
        tmp_file = os.path.join(scratch, "tmp-env-count")
        for n in (1, 2, 3):
            self.assertResponse(self.invoke({}), {"greeting": "hi there", "count": n, "tmp_file": tmp_file})
        with open(tmp_file) as f:
            self.assertEqual(f.read(), "3")


class FakeChat:
    """A Slack-compatible incoming webhook that records what it receives."""

    def __init__(self, status=200):
        self.status = status
        self.posts = []
        chat = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                chat.posts.append((self.headers.get("Content-Type"), json.loads(body)))
                self.send_response(chat.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/services/T000/B000/XXX" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


CREATED = {"action": "created",
           "repository": {"full_name": "acme/widgets", "html_url": "https://github.com/acme/widgets"},
           "sender": {"login": "ada"}}


class RepoAlertExampleTest(ExampleTestCase):
    def setUp(self):
        super().setUp()
        self.chat = FakeChat()
        self.addCleanup(self.chat.close)

    def start_alert(self, url=None, secret=""):
        self.start_example("repo-alert", PYTHON, "app.handler",
                           env={"CHAT_WEBHOOK_URL": url if url is not None else self.chat.url,
                                "GITHUB_WEBHOOK_SECRET": secret})

    def hook(self, payload, event="repository", raw=None, is_base64=False, headers=None):
        body = raw if raw is not None else json.dumps(payload)
        all_headers = {"content-type": "application/json", "x-github-event": event}
        all_headers.update(headers or {})
        result = self.invoke(http_event("POST", "/hooks/github", headers=all_headers, body=body,
                                        is_base64=is_base64))
        self.assertEqual(result.kind, "response", result.body)
        doc = result.json()
        return doc["statusCode"], json.loads(doc["body"])

    def test_a_created_repository_is_announced_with_its_name_and_creator(self):
        self.start_alert()
        self.assertEqual(self.hook(CREATED), (200, {"notified": True}))
        self.assertEqual(len(self.chat.posts), 1)
        content_type, message = self.chat.posts[0]
        self.assertEqual(content_type, "application/json")
        self.assertIn("Please review", message["text"])
        self.assertIn("acme/widgets", message["text"])
        self.assertIn("ada", message["text"])
        section = message["blocks"][0]
        self.assertEqual(section["type"], "section")
        self.assertIn("<https://github.com/acme/widgets|acme/widgets>", section["text"]["text"])
        self.assertIn("*ada*", section["text"]["text"])

    def test_a_base64_encoded_body_is_decoded(self):
        self.start_alert()
        raw = base64.b64encode(json.dumps(CREATED).encode()).decode()
        self.assertEqual(self.hook(None, raw=raw, is_base64=True), (200, {"notified": True}))
        self.assertEqual(len(self.chat.posts), 1)

    def test_other_events_and_actions_are_ignored_with_202(self):
        self.start_alert()
        status, doc = self.hook({"zen": "hi"}, event="ping")
        self.assertEqual(status, 202)
        self.assertIn("ping", doc["ignored"])
        status, doc = self.hook(dict(CREATED, action="deleted"))
        self.assertEqual(status, 202)
        self.assertIn("deleted", doc["ignored"])
        self.assertEqual(self.chat.posts, [])

    def test_a_body_that_is_not_json_is_a_400(self):
        self.start_alert()
        status, doc = self.hook(None, raw="action=created")
        self.assertEqual(status, 400)
        self.assertIn("not JSON", doc["error"])
        status, doc = self.hook(None, raw="%%%not base64", is_base64=True)
        self.assertEqual(status, 400)

    def test_the_placeholder_webhook_url_is_a_500_that_says_what_to_set(self):
        self.start_alert(url="http://127.0.0.1:9/unset")
        status, doc = self.hook(CREATED)
        self.assertEqual(status, 500)
        self.assertIn("CHAT_WEBHOOK_URL is not set", doc["error"])
        self.assertIn("CHAT_WEBHOOK_URL is not set", self.stdout())

    def test_a_failing_chat_webhook_is_a_500_naming_the_failure(self):
        self.chat.status = 503
        self.start_alert()
        status, doc = self.hook(CREATED)
        self.assertEqual(status, 500)
        self.assertIn("503", doc["error"])
        self.assertIn("acme/widgets was not announced", doc["error"])

    def test_an_unreachable_chat_webhook_is_a_500(self):
        url = self.chat.url
        self.chat.close()
        self.start_alert(url=url)
        status, doc = self.hook(CREATED)
        self.assertEqual(status, 500)
        self.assertIn("could not reach the chat webhook", doc["error"])

    def test_with_a_secret_only_correctly_signed_requests_are_accepted(self):
        self.start_alert(secret="s3cret")
        body = json.dumps(CREATED)
        status, _ = self.hook(None, raw=body, headers={"x-hub-signature-256": "sha256=00"})
        self.assertEqual(status, 401)
        good = "sha256=" + hmac.new(b"s3cret", body.encode(), hashlib.sha256).hexdigest()
        self.assertEqual(self.hook(None, raw=body, headers={"x-hub-signature-256": good}),
                         (200, {"notified": True}))


if __name__ == "__main__":
    unittest.main()
