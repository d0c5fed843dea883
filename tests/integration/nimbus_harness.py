"""Shared harness for nimbus's integration tests.

Every test file starts the real `nimbus serve` daemon (NIMBUS_BIN) on a free loopback port with
its own temporary data directory, deploys function directories with the real CLI
(`nimbus deploy DIR --endpoint URL`) or PUTs zips straight to the admin API, talks to it over
plain HTTP, and stops it with SIGTERM (SIGKILL after a bound). When a test fails, the part of
the daemon's log written while that test ran is printed, so a CTest failure shows what the
daemon saw.

The admin API wants the daemon's token (DATA/admin.token). The Daemon helper reads it once the
daemon has started and sends it on its own /v1 requests; the CLI it runs gets it as
NIMBUS_TOKEN (or, with token_env=False, finds it through the endpoint registration the daemon
wrote). Each daemon runs with HOME set to a directory of its own, so registrations never land
in the real home directory, and the CLI runs with the same HOME.

Instance processes are found from the host's side by scanning /proc for processes whose
environment carries AWS_LAMBDA_FUNCTION_NAME=<name>: that works whether or not the sandbox
gives an instance its own PID namespace (where the handler's own os.getpid() says nothing about
the host). Function names carry a random suffix so that test files running in parallel never
see each other's instances.

Standard library only; run with python3 >= 3.9.
"""

import base64
import fcntl
import http.client
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest
import urllib.parse
import zipfile

STARTUP_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0
DEFAULT_HTTP_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0


def nimbus_bin():
    path = os.environ.get("NIMBUS_BIN", "")
    if not path:
        raise RuntimeError("NIMBUS_BIN is not set; run the suite through ctest, or export "
                           "NIMBUS_BIN=/path/to/build/nimbus")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"NIMBUS_BIN={path} is not an executable; build the `nimbus` target "
                           "first (cmake --build BUILD --target nimbus)")
    return path


def source_dir():
    path = os.environ.get("NIMBUS_SOURCE_DIR")
    if path:
        return path
    # tests/integration/ -> project root
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unique_name(base):
    """A function name unique to this run: parallel test files must not share instance names."""
    return f"{base}-{secrets.token_hex(3)}"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    """An HTTP answer: status, headers (case-insensitive, multi-valued) and the raw body."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage
        self.body = body

    def header(self, name):
        return self.headers.get(name)

    def header_all(self, name):
        return self.headers.get_all(name) or []

    def text(self):
        return self.body.decode("utf-8", errors="replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError(f"body is not JSON ({e}); status {self.status}, body: "
                                 f"{self.body[:2000]!r}") from None

    def __repr__(self):
        return f"<Response {self.status} {dict(self.headers.items())} {self.body[:500]!r}>"


def http_request(port, method, path, body=None, headers=None, timeout=DEFAULT_HTTP_TIMEOUT_S):
    """One request on its own connection. headers may be a dict or a list of (name, value)
    pairs (a list can repeat a name)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        names = {k.lower() for k, _ in pairs}
        for k, v in pairs:
            conn.putheader(k, v)
        if body is not None and "content-length" not in names:
            conn.putheader("Content-Length", str(len(body)))
        elif body is None and method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", "0")
        conn.endheaders()
        if body is not None:
            conn.send(body)
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, resp.headers, data)
    finally:
        conn.close()


def http_request_streaming_body(port, method, path, body, headers, timeout=120.0):
    """Sends a large body from a second thread while the main thread reads the answer, so a
    server that answers (say 413) before reading the whole body is still heard, rather than
    the client dying on a broken pipe."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
            f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())

    def send_body():
        view = memoryview(body)
        try:
            for off in range(0, len(view), 1 << 20):
                sock.sendall(view[off:off + (1 << 20)])
        except OSError:
            pass  # the server answered early and closed; the reader has (or will get) it

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        data = resp.read()
        return Response(resp.status, resp.headers, data)
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        sender.join(timeout=10)


# ---------------------------------------------------------------------------------------------
# Instance processes, seen from the host.


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def instance_pids(function_name):
    """Host pids of live (non-zombie) processes whose environment names the function."""
    needle = b"AWS_LAMBDA_FUNCTION_NAME=" + function_name.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        env = _read(f"/proc/{entry}/environ")
        if not env or needle not in env.split(b"\0"):
            continue
        found.append(int(entry))
    return sorted(found)


def pid_exists(pid):
    """True while /proc/PID exists at all, zombies included: an unreaped instance is not gone."""
    return os.path.exists(f"/proc/{pid}")


class PidWatcher:
    """Samples instance_pids(name) every 20 ms in a thread; `seen` is every pid ever observed
    and `max_concurrent` the largest number alive in one sample."""

    def __init__(self, function_name, interval=0.02):
        self.name = function_name
        self.interval = interval
        self.seen = set()
        self.max_concurrent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample(self):
        pids = instance_pids(self.name)
        self.seen.update(pids)
        self.max_concurrent = max(self.max_concurrent, len(pids))

    def _loop(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)


def wait_until(predicate, timeout, interval=0.05):
    """Polls predicate until it returns a truthy value or timeout passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Function directories and packages.


def manifest_text(name, runtime, handler=None, memory=None, timeout=None, keep_alive=None,
                  concurrency_max=None, min_warm=0, routes=(), environment=None):
    lines = [f"name: {name}", f"runtime: {runtime}"]
    if handler:
        lines.append(f"handler: {handler}")
    if memory is not None:
        lines.append(f"memory: {memory}")
    if timeout is not None:
        lines.append(f"timeout: {timeout}")
    if keep_alive is not None:
        lines.append(f"keep_alive: {keep_alive}")
    if concurrency_max is not None or min_warm:
        lines.append(f"concurrency: {{max: {concurrency_max or 10}, min_warm: {min_warm}}}")
    if environment:
        lines.append("environment:")
        for k, v in environment.items():
            lines.append(f"  {k}: {json.dumps(v)}")
    if routes:
        lines.append("http:")
        for method, path in routes:
            lines.append(f"  - {{method: {method}, path: {path}}}")
    return "\n".join(lines) + "\n"


def write_function_dir(parent, files, executable=()):
    """Writes {relative path: text or bytes} under a new directory in `parent`; returns it."""
    d = tempfile.mkdtemp(prefix="fn-", dir=parent)
    for rel, content in files.items():
        path = os.path.join(d, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(path, mode) as f:
            f.write(content)
        if rel in executable:
            os.chmod(path, 0o755)
    return d


def zip_bytes(files, executable=()):
    """A zip in memory of {name: text or bytes}; names in `executable` get mode 0755."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = ((0o100755 if name in executable else 0o100644) << 16)
            zf.writestr(info, content)
    return buf.getvalue()


# The fixtures every runtime shares: one handler whose behaviour is picked by the event, so
# one deployed function covers echo, raise, sleep and crash. For an HTTP event the action is
# the last path segment; for an Invoke API event it is event["action"]. INSTANCE is drawn
# once per process, so two answers with the same INSTANCE came from the same instance.
PY_HANDLER = textwrap.dedent('''\
    import base64, json, os, sys, time, uuid
    INSTANCE = uuid.uuid4().hex
    MARKER = "__MARKER__"

    def _action(event):
        if isinstance(event, dict):
            if "action" in event:
                return event["action"]
            raw = event.get("rawPath")
            if isinstance(raw, str) and raw:
                return raw.rstrip("/").rsplit("/", 1)[-1]
        return "echo"

    def _seconds(event):
        if isinstance(event, dict):
            if "seconds" in event:
                return float(event["seconds"])
            qs = event.get("queryStringParameters") or {}
            if "seconds" in qs:
                return float(qs["seconds"])
        return 5.0

    def handler(event, context):
        action = _action(event)
        print("handling " + action + " in " + INSTANCE + " log-marker-" + MARKER, flush=True)
        if action == "raise":
            raise ValueError("boom from python")
        if action == "exit":
            sys.stdout.flush()
            os._exit(1)
        if action == "sleep":
            time.sleep(_seconds(event))
        if action == "custom":
            return {"statusCode": 201,
                    "headers": {"x-custom": "yes", "content-type": "text/plain"},
                    "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
                    "body": "created"}
        if action == "bare-list":
            return [1, "two", {"three": 3}]
        if action == "binary":
            body = event.get("body") or ""
            raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
            return {"statusCode": 200,
                    "headers": {"content-type": "application/octet-stream",
                                "x-saw-base64": str(bool(event.get("isBase64Encoded"))).lower()},
                    "body": base64.b64encode(raw).decode(),
                    "isBase64Encoded": True}
        return {"event": event, "instance": INSTANCE, "pid": os.getpid(), "marker": MARKER,
                "runtime": "python3", "requestId": context.aws_request_id,
                "functionVersion": os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")}
    ''')

NODE_HANDLER = textwrap.dedent('''\
    const crypto = require("crypto");
    const INSTANCE = crypto.randomUUID();
    const MARKER = "__MARKER__";

    function action(event) {
      if (event && typeof event === "object") {
        if ("action" in event) return event.action;
        if (typeof event.rawPath === "string" && event.rawPath) {
          const parts = event.rawPath.replace(/\\/+$/, "").split("/");
          return parts[parts.length - 1];
        }
      }
      return "echo";
    }

    function seconds(event) {
      if (event && "seconds" in event) return Number(event.seconds);
      const qs = (event && event.queryStringParameters) || {};
      if ("seconds" in qs) return Number(qs.seconds);
      return 5;
    }

    exports.handler = async (event, context) => {
      const a = action(event);
      console.log("handling " + a + " in " + INSTANCE + " log-marker-" + MARKER);
      if (a === "raise") throw new TypeError("boom from node");
      if (a === "exit") process.exit(1);
      if (a === "sleep") await new Promise((r) => setTimeout(r, seconds(event) * 1000));
      return {event, instance: INSTANCE, pid: process.pid, marker: MARKER, runtime: "nodejs",
              requestId: context.awsRequestId,
              functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION};
    };
    ''')

# A `provided` runtime in plain sh + curl speaking the Runtime API: it returns each event
# unchanged, so through the HTTP trigger the event comes back as a bare JSON body.
SH_BOOTSTRAP = textwrap.dedent('''\
    #!/bin/sh
    set -u
    API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
    HDRS=/tmp/next-headers.$$
    BODY=/tmp/next-body.$$
    while true; do
      curl -sS -o "$BODY" -D "$HDRS" "$API/invocation/next" || exit 1
      ID=$(grep -i '^lambda-runtime-aws-request-id:' "$HDRS" | cut -d: -f2 | tr -d ' \\r')
      echo "provided handling $ID log-marker-__MARKER__"
      curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' \\
        --data-binary "@$BODY" "$API/invocation/$ID/response" || exit 1
    done
    ''')


def function_files(runtime, name, marker="1", **manifest_kw):
    """The files of the shared fixture in `runtime` (python3, nodejs or provided)."""
    if runtime == "python3":
        return {"function.yaml": manifest_text(name, "python3", "app.handler", **manifest_kw),
                "app.py": PY_HANDLER.replace("__MARKER__", marker)}
    if runtime == "nodejs":
        return {"function.yaml": manifest_text(name, "nodejs", "index.handler", **manifest_kw),
                "index.js": NODE_HANDLER.replace("__MARKER__", marker)}
    if runtime == "provided":
        return {"function.yaml": manifest_text(name, "provided", "bootstrap", **manifest_kw),
                "bootstrap": SH_BOOTSTRAP.replace("__MARKER__", marker)}
    raise ValueError(runtime)


EXECUTABLES = ("bootstrap",)


# ---------------------------------------------------------------------------------------------
# The daemon.


class Daemon:
    """One `nimbus serve` process with its own port and data directory."""

    def __init__(self, extra_args=()):
        self.bin = nimbus_bin()
        self.extra_args = list(extra_args)  # more `nimbus serve` flags, e.g. --insecure-no-sandbox
        self.workdir = tempfile.mkdtemp(prefix="nimbus-it-")
        self.data_dir = os.path.join(self.workdir, "data")
        os.makedirs(self.data_dir)
        self.log_path = os.path.join(self.workdir, "daemon.log")
        # HOME of the daemon and of the CLI runs: endpoint registrations go under it.
        self.home = os.path.join(self.workdir, "home")
        os.makedirs(self.home, mode=0o700)
        self.proc = None
        self.port = None
        self.token = None  # DATA/admin.token, read after start

    @property
    def token_file(self):
        return os.path.join(self.data_dir, "admin.token")

    def _read_token(self):
        try:
            with open(self.token_file) as f:
                return f.read().strip() or None
        except OSError:
            return None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self):
        """Starts `nimbus serve` on self.port and self.data_dir (its output appended to the log)."""
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "--listen", f"127.0.0.1:{self.port}",
             "--data-dir", self.data_dir, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.workdir, start_new_session=True, env=dict(os.environ, HOME=self.home))
        log.close()

    def _await_ready(self, deadline):
        """None once the daemon answers GET /v1/functions, else why it did not by `deadline`."""
        last_error = f"daemon did not answer GET /v1/functions within {STARTUP_TIMEOUT_S}s"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"daemon exited with {self.proc.returncode} during start"
            try:
                # The token file is written before the daemon listens.
                self.token = self.token or self._read_token()
                r = http_request(self.port, "GET", "/v1/functions", timeout=2,
                                 headers=self.auth_headers())
                if r.status == 200:
                    return None
                last_error = f"GET /v1/functions answered {r.status}"
            except OSError as e:
                last_error = f"GET /v1/functions: {e}"
            time.sleep(0.05)
        return last_error

    def start(self):
        last_error = None
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = free_port()
            self.token = None
            self._spawn()
            last_error = self._await_ready(time.monotonic() + STARTUP_TIMEOUT_S)
            if last_error is None:
                return self
            self._kill()
        raise RuntimeError(f"could not start nimbus: {last_error}\n--- daemon log ---\n"
                           f"{self.log_text()}")

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_GRACE_S; returns the exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                sys.stderr.write(f"nimbus did not exit within {STOP_GRACE_S}s of SIGTERM; "
                                 "sending SIGKILL\n")
        # Whatever is left in the daemon's session (instances included) goes too, so a failed
        # run never leaves processes behind.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        return self.proc.returncode

    def cleanup(self):
        # NIMBUS_IT_KEEP=1 keeps the data directory, log (and any core file) for a post-mortem.
        if os.environ.get("NIMBUS_IT_KEEP"):
            sys.stderr.write(f"kept {self.workdir}\n")
            return
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, offset=0):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    # --- HTTP -----------------------------------------------------------------------------

    def auth_headers(self):
        """{"Authorization": "Bearer TOKEN"}, or {} before the token is known."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def request(self, method, path, body=None, headers=None, timeout=DEFAULT_HTTP_TIMEOUT_S,
                auth=True):
        """One request. A /v1 request carries the admin token unless auth=False or the caller
        sends its own Authorization header."""
        if isinstance(body, str):
            body = body.encode()
        if auth and (path == "/v1" or path.startswith("/v1/") or path.startswith("/v1?")):
            pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
            if "authorization" not in {k.lower() for k, _ in pairs}:
                pairs += list(self.auth_headers().items())
            headers = pairs
        return http_request(self.port, method, path, body, headers, timeout)

    def invoke(self, name, payload, headers=None, qualifier=None, timeout=DEFAULT_HTTP_TIMEOUT_S):
        """Lambda Invoke API; payload is JSON-encoded unless it is already bytes."""
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        path = f"/2015-03-31/functions/{urllib.parse.quote(name)}/invocations"
        if qualifier:
            path += f"?Qualifier={urllib.parse.quote(qualifier)}"
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.request("POST", path, body, h, timeout)

    def put_zip(self, name, data, timeout=120.0, auth=True):
        path = f"/v1/functions/{urllib.parse.quote(name, safe='')}"
        headers = {"Content-Type": "application/zip"}
        if auth:
            headers.update(self.auth_headers())
        return http_request_streaming_body(self.port, "PUT", path, data, headers, timeout)

    def functions(self):
        r = self.request("GET", "/v1/functions")
        if r.status != 200:
            raise AssertionError(f"GET /v1/functions answered {r.status}: {r.text()}")
        return r.json()["functions"]

    def function(self, name):
        r = self.request("GET", f"/v1/functions/{name}")
        if r.status != 200:
            raise AssertionError(f"GET /v1/functions/{name} answered {r.status}: {r.text()}")
        return r.json()

    # --- CLI ------------------------------------------------------------------------------

    def cli_env(self, token_env=True, home=None):
        """The CLI's environment: NIMBUS_ENDPOINT, HOME (the daemon's unless `home` is given)
        and, with token_env, NIMBUS_TOKEN; without it NIMBUS_TOKEN is unset."""
        env = dict(os.environ, NIMBUS_ENDPOINT=self.endpoint, HOME=home or self.home)
        env.pop("NIMBUS_TOKEN", None)
        if token_env and self.token:
            env["NIMBUS_TOKEN"] = self.token
        return env

    def cli(self, *args, timeout=CLI_TIMEOUT_S, token_env=True, endpoint_flag=True, home=None,
            cwd=None):
        """Runs `nimbus ARGS --endpoint URL`; returns the CompletedProcess (text mode).
        token_env=False leaves NIMBUS_TOKEN unset, so the CLI looks the token up itself;
        endpoint_flag=False leaves out --endpoint (NIMBUS_ENDPOINT still names the daemon)."""
        argv = [self.bin, *args] + (["--endpoint", self.endpoint] if endpoint_flag else [])
        return subprocess.run(argv, env=self.cli_env(token_env, home), cwd=cwd,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def deploy(self, directory, check=True):
        p = self.cli("deploy", directory)
        if check and p.returncode != 0:
            raise AssertionError(f"nimbus deploy {directory} exited {p.returncode}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def deploy_files(self, parent, files, check=True):
        d = write_function_dir(parent, files, executable=EXECUTABLES)
        return d, self.deploy(d, check=check)


class NimbusTestCase(unittest.TestCase):
    """Starts one daemon per test class (setUpClass) and stops it afterwards. A failing test
    prints the daemon log written while it ran."""

    nimbus = None
    daemon_args = ()  # extra `nimbus serve` flags for this class's daemon
    scratch = None

    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="nimbus-it-fns-")
        cls.nimbus = Daemon(cls.daemon_args).start()

    @classmethod
    def tearDownClass(cls):
        if cls.nimbus:
            cls.nimbus.stop()
            cls.nimbus.cleanup()
        if cls.scratch:
            shutil.rmtree(cls.scratch, ignore_errors=True)

    def run(self, result=None):
        if result is None:
            result = self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        offset = self.nimbus.log_size() if self.nimbus else 0
        super().run(result)
        if self.nimbus and len(result.failures) + len(result.errors) > before:
            sys.stderr.write(f"\n--- nimbus log during {self.id()} ---\n"
                             f"{self.nimbus.log_text(offset)[-20000:]}"
                             f"--- end of nimbus log ---\n")
            code = self.nimbus.proc.poll() if self.nimbus.proc else None
            if code is not None:
                how = (f"killed by signal {signal.Signals(-code).name}" if code < 0
                       else f"exited with status {code}")
                sys.stderr.write(f"--- nimbus (pid {self.nimbus.proc.pid}) is not running: "
                                 f"{how} ---\n")
        return result

    # --- helpers shared by the test files -----------------------------------------------

    def deploy_fixture(self, runtime, base, marker="1", **manifest_kw):
        name = unique_name(base)
        d, _ = self.nimbus.deploy_files(self.scratch,
                                        function_files(runtime, name, marker, **manifest_kw))
        return name, d

    def assertStatus(self, response, status):
        self.assertEqual(response.status, status, f"unexpected answer: {response!r}")

    def assertNoInstancesWithin(self, name, seconds):
        left = wait_until(lambda: not instance_pids(name), seconds)
        self.assertTrue(left, f"instance processes of {name} still alive after {seconds}s: "
                              f"{instance_pids(name)}")


def b64(data):
    return base64.b64encode(data).decode()


def main():
    unittest.main(verbosity=2)


# ---------------------------------------------------------------------------------------------
# npm packages the tests need (AWS's own clients), installed once into a cache outside the
# repository so repeated `make test` runs do not reinstall them.


def cache_root():
    root = os.environ.get("NIMBUS_TEST_CACHE", "/var/cache/nimbus-test")
    try:
        os.makedirs(root, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    root = os.path.join(os.path.expanduser("~"), ".cache", "nimbus-test")
    os.makedirs(root, exist_ok=True)
    return root


def npm_cached(package, version, check=None, timeout=1500):
    """Returns the cached install directory (holding node_modules/) of package@version,
    installing it once under a lock and behind a completion marker, so parallel or repeated
    runs install it once. `check(stage_dir)` may raise to refuse an incomplete install."""
    root = cache_root()
    slug = package.replace("/", "+").replace("@", "")
    final = os.path.join(root, f"{slug}-{version}")
    marker = os.path.join(final, ".complete")
    if os.path.exists(marker):
        return final
    with open(os.path.join(root, f"{slug}-{version}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(marker):  # another run finished it while we waited
            return final
        stage = tempfile.mkdtemp(prefix=f".{slug}-{version}-", dir=root)
        os.chmod(stage, 0o755)
        try:
            with open(os.path.join(stage, "package.json"), "w") as f:
                json.dump({"name": "nimbus-test-cache", "private": True}, f)
            p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--save-exact",
                                f"{package}@{version}"], cwd=stage,
                               capture_output=True, text=True, timeout=timeout)
            if p.returncode != 0:
                raise RuntimeError(f"npm install {package}@{version} failed "
                                   f"({p.returncode}):\n{p.stdout[-5000:]}\n{p.stderr[-5000:]}")
            if check:
                check(stage, p)
            open(os.path.join(stage, ".complete"), "w").close()
            shutil.rmtree(final, ignore_errors=True)  # a half-made one from a killed run
            os.rename(stage, final)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return final
