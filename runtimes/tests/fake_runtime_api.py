"""A fake Lambda Runtime API (2018-06-01) and helpers for the runtime conformance tests.

RuntimeTestCase runs a suite's cases over the HTTP Runtime API; fake_runtime_channel's
ChannelRuntimeTestCase runs the same cases over the runtime channel. The fake serves queued events on GET /invocation/next, records what the runtime posts to
/response, /error and /init/error (bodies and headers), and counts accepted TCP connections,
so tests can check that a runtime keeps ONE keep-alive connection. It runs in a background
thread on 127.0.0.1:0; the runtime under test is the real bootstrap, started as the daemon
would start it (cwd = LAMBDA_TASK_ROOT, the Lambda environment variables, logs to files).

Threading: the HTTP server answers on its own threads; every shared field is guarded by
FakeRuntimeApi.cond, and tests read results through the wait_* methods.
"""

import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_ROOT = os.path.dirname(os.path.dirname(HERE))
# CTest points this at the build tree's share/nimbus/runtimes (what the daemon runs); run by
# hand, the tests use the source tree.
RUNTIMES_DIR = os.environ.get("NIMBUS_RUNTIMES_DIR", os.path.join(SOURCE_ROOT, "runtimes"))
WAIT_S = float(os.environ.get("NIMBUS_TEST_WAIT_S", "20"))
TIMEOUT_MS = 5000


class Result:
    def __init__(self, kind, body, headers):
        self.kind = kind          # "response" | "error"
        self.body = body          # bytes
        self.headers = headers    # dict, lower-case names

    def json(self):
        return json.loads(self.body)


class FakeRuntimeApi:
    def __init__(self):
        self.cond = threading.Condition()
        self.events = queue.Queue()
        self.results = {}
        self.init_errors = []
        self.connections = 0
        self.pending = set()
        self.drop_connection_after_result = False
        self.chunked_events = False
        self.closing = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                with fake.cond:
                    fake.connections += 1
                    fake.cond.notify_all()

            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    return self._answer(404, {"errorType": "NotFound"})
                while True:
                    if fake.closing:
                        return self._answer(503, {"errorType": "ShuttingDown"})
                    try:
                        event = fake.events.get(timeout=0.05)
                        break
                    except queue.Empty:
                        continue
                body = event["body"]
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", event["id"])
                self.send_header("Lambda-Runtime-Deadline-Ms", str(event["deadline_ms"]))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn", event["arn"])
                self.send_header("Lambda-Runtime-Trace-Id", event["trace_id"])
                for name, value in event["extra_headers"].items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                if fake.chunked_events:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(body) // 2
                    for part in (body[:half], body[half:]):
                        if part:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                self.wfile.flush()

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                parts = self.path.split("/")
                if self.path == "/2018-06-01/runtime/init/error":
                    with fake.cond:
                        fake.init_errors.append(Result("init_error", body, headers))
                        fake.cond.notify_all()
                    return self._answer(202, {"status": "OK"})
                if len(parts) == 6 and parts[:4] == ["", "2018-06-01", "runtime", "invocation"] \
                        and parts[5] in ("response", "error"):
                    request_id = parts[4]
                    with fake.cond:
                        if request_id not in fake.pending:
                            known = False
                        else:
                            known = True
                            fake.pending.discard(request_id)
                            fake.results[request_id] = Result(parts[5], body, headers)
                            fake.cond.notify_all()
                    if not known:
                        return self._answer(400, {"errorMessage": "Invalid request ID",
                                                  "errorType": "InvalidRequestID"})
                    self._answer(202, {"status": "OK"})
                    if fake.drop_connection_after_result:
                        # Close without a Connection: close header, as a restarted server would.
                        self.close_connection = True
                    return
                self._answer(404, {"errorType": "NotFound"})

            def _answer(self, status, doc):
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                # A runtime killed at the end of a test drops its connection mid-answer.
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return "127.0.0.1:%d" % self.server.server_address[1]

    def add_event(self, event, deadline_ms=None, client_context=None, cognito_identity=None,
                  trace_id=None, raw_body=None):
        """Queues an event; returns its request id."""
        request_id = str(uuid.uuid4())
        extra = {}
        if client_context is not None:
            extra["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if cognito_identity is not None:
            extra["Lambda-Runtime-Cognito-Identity"] = json.dumps(cognito_identity)
        with self.cond:
            self.pending.add(request_id)
        self.events.put({
            "id": request_id,
            "body": raw_body if raw_body is not None else json.dumps(event).encode(),
            "deadline_ms": deadline_ms if deadline_ms is not None else int(time.time() * 1000) + TIMEOUT_MS,
            "arn": "arn:aws:lambda:local:000000000000:function:test-fn",
            "trace_id": trace_id or "Root=1-00000000-%s;Parent=0000000000000001;Sampled=0" % request_id[:24].replace("-", ""),
            "extra_headers": extra,
        })
        return request_id

    def wait_result(self, request_id, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        with self.cond:
            while request_id not in self.results:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no result for %s within %.0f s" % (request_id, timeout))
                self.cond.wait(left)
            return self.results[request_id]

    def wait_init_error(self, timeout=WAIT_S):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.init_errors:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no init error within %.0f s" % timeout)
                self.cond.wait(left)
            return self.init_errors[0]

    def launch(self, argv):
        """(argv, extra environment, extra Popen arguments) for a runtime about to start."""
        return argv, {}, {}

    def launched(self):
        pass

    def close(self):
        self.closing = True
        self.server.shutdown()
        self.server.server_close()


class RuntimeTestCase(unittest.TestCase):
    """Starts a fake Runtime API and, on demand, a runtime process with a temp task root."""

    TRANSPORT = "http"

    def make_fake(self):
        return FakeRuntimeApi()

    def setUp(self):
        self.fake = self.make_fake()
        self.tmp = tempfile.mkdtemp(prefix="nimbus-rt-test-")
        self.task_root = os.path.join(self.tmp, "task")
        os.mkdir(self.task_root)
        self.proc = None

    def tearDown(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.fake.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write_files(self, files):
        for rel, text in files.items():
            path = os.path.join(self.task_root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)

    def start(self, executable, handler, files=None, env=None, runtime_api=None, wrapper=None):
        """Launches `executable` the way the daemon does; returns the Popen. `wrapper`: a
        command line to run it under (strace)."""
        if files:
            self.write_files(files)
        environ = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": runtime_api if runtime_api is not None else self.fake.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": self.task_root,
            "LAMBDA_RUNTIME_DIR": os.path.dirname(executable),
            "AWS_LAMBDA_FUNCTION_NAME": "test-fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "7",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(TIMEOUT_MS // 1000),
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/test-fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2025/01/01/[7]abcdef",
            "AWS_REGION": "local",
            "AWS_DEFAULT_REGION": "local",
        }
        argv, fake_env, popen_args = self.fake.launch((wrapper or []) + [executable])
        environ.update(fake_env)
        if env:
            environ.update(env)
        environ = {k: v for k, v in environ.items() if v is not None}
        self.stdout_path = os.path.join(self.tmp, "stdout.log")
        self.stderr_path = os.path.join(self.tmp, "stderr.log")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = self.spawn(argv, environ, dict(stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                                       **popen_args))
        self.fake.launched()
        return self.proc

    def spawn(self, argv, environ, popen_args):
        """Starts the runtime with the function's environment, in its task root."""
        return subprocess.Popen(argv, cwd=self.task_root, env=environ, **popen_args)

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_exit(self, timeout=WAIT_S):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the runtime did not exit within %.0f s" % timeout) from None

    def invoke(self, event, **kwargs):
        return self.fake.wait_result(self.fake.add_event(event, **kwargs))

    def assertResponse(self, result, expected):
        self.assertEqual(result.kind, "response",
                         "expected a response, got %s: %s\nstderr:\n%s" % (
                             result.kind, result.body, self.stderr()))
        self.assertEqual(result.json(), expected)


class HttpFallbackCases:
    """For HTTP suites: a NIMBUS_RUNTIME_FD that names no socket leaves the runtime on HTTP. The
    suite provides start_echo(env=None), a runtime whose handler returns its event."""

    def test_a_runtime_fd_that_is_not_open_leaves_the_runtime_on_http(self):
        self.start_echo(env={"NIMBUS_RUNTIME_FD": "4"})  # nothing is inherited as fd 4
        self.assertResponse(self.invoke({"via": "http"}), {"via": "http"})

    def test_a_runtime_fd_that_is_not_a_socket_leaves_the_runtime_on_http(self):
        self.start_echo(env={"NIMBUS_RUNTIME_FD": "0"})  # stdin: /dev/null
        self.assertResponse(self.invoke({"via": "http"}), {"via": "http"})
