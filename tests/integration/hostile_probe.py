"""Hostile functions for the confinement tests (test_sandbox.py, test_runtime_api_abuse.py,
test_loop_responsiveness.py).

PROBE_APP is one python3 handler that attempts an attack picked by event["action"] and reports
what it observed as JSON (never raising for an attack that was refused), so a failing assertion
prints what the function saw: {"instance": ..., "result": {...}}. Every OS error is reported as
{"ok": false, "errno": N, "errname": "EACCES", "error": "..."}.

raw_http() is a tiny HTTP/1.1 client on a raw socket that tells apart how a connection ended
(refused, reset, closed without an answer, unreachable, timed out, or an HTTP answer); the same
source runs in the test process and, pasted into PROBE_APP, inside functions.

Standard library only.
"""

import inspect
import json
import signal
import textwrap

import nimbus_harness as h

# How a raw_http() attempt may end when the other side refuses to serve it.
REFUSED_OUTCOMES = ("refused", "reset", "closed", "unreachable", "connect-timeout")


def raw_http(addr, method, path, body=b"", headers=None, connect_timeout=2.0,
             read_timeout=2.0):
    """One request on a fresh TCP connection to addr ("HOST:PORT"). Returns a dict whose
    "outcome" is refused | reset | closed | unreachable | connect-timeout | read-timeout |
    http | error; for "http" also status, headers (lower-case names) and body (text)."""
    import errno as _errno
    import socket as _socket

    host, _, port = addr.rpartition(":")
    out = {"addr": addr, "request": f"{method} {path}"}
    try:
        sock = _socket.create_connection((host, int(port)), timeout=connect_timeout)
    except ConnectionRefusedError as e:
        out.update(outcome="refused", error=str(e))
        return out
    except _socket.timeout as e:
        out.update(outcome="connect-timeout", error=str(e))
        return out
    except OSError as e:
        unreachable = (_errno.ENETUNREACH, _errno.EHOSTUNREACH, _errno.EACCES, _errno.EPERM,
                       _errno.EADDRNOTAVAIL, _errno.ENETDOWN)
        out.update(outcome="unreachable" if e.errno in unreachable else "error",
                   errno=e.errno, error=str(e))
        return out
    data = b""
    try:
        sock.settimeout(read_timeout)
        if isinstance(body, str):
            body = body.encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {addr}", "Connection: close",
                 f"Content-Length: {len(body)}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                length = None
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v.strip())
                if length is not None and len(rest) >= length:
                    break
    except (ConnectionResetError, BrokenPipeError) as e:
        if not data:
            out.update(outcome="reset", error=str(e))
            return out
    except _socket.timeout:
        if not data:
            out.update(outcome="read-timeout", error=f"no answer within {read_timeout}s")
            return out
    except OSError as e:
        out.update(outcome="error", errno=e.errno, error=str(e))
        return out
    finally:
        sock.close()
    if not data:
        out.update(outcome="closed", error="connection closed without an answer")
        return out
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    try:
        status = int(parts[1])
    except (IndexError, ValueError):
        status = None
    out.update(outcome="http", status=status, headers=hdrs,
               body=rest.decode("utf-8", "replace")[:2000])
    return out


def describe(attempt):
    """One line for an assertion message."""
    if attempt.get("outcome") == "http":
        return (f"{attempt['request']} to {attempt['addr']} answered HTTP {attempt.get('status')} "
                f"{json.dumps(attempt.get('headers', {}))[:600]} body {attempt.get('body')!r}")
    return f"{attempt.get('request')} to {attempt.get('addr')}: {attempt.get('outcome')} " \
           f"({attempt.get('error')})"


PROBE_APP = textwrap.dedent('''\
    import ctypes, errno, json, os, platform, resource, signal, sys, tempfile, time, uuid

    INSTANCE = uuid.uuid4().hex
    LIBC = ctypes.CDLL(None, use_errno=True)


    def _err(e):
        return {"ok": False, "errno": e.errno, "errname": errno.errorcode.get(e.errno, "?"),
                "error": str(e)}


    def _read(path):
        try:
            with open(path, "rb") as f:
                data = f.read(65536)
            head = data[:120].decode("utf-8", "replace").replace("\\0", ".")
            return {"ok": True, "bytes": len(data), "head": head}
        except OSError as e:
            return _err(e)


    def _listdir(path):
        try:
            return {"ok": True, "entries": sorted(os.listdir(path))[:200]}
        except OSError as e:
            return _err(e)


    def _write(path, remove=True, mode="w"):
        """mode "w" creates (or truncates) path and writes a line; "a" opens an existing file
        for appending and writes nothing, so a successful attempt leaves the file unchanged."""
        try:
            with open(path, mode) as f:
                if mode == "w":
                    f.write("written by a hostile function\\n")
            if remove and mode == "w":
                os.unlink(path)
            return {"ok": True}
        except OSError as e:
            return _err(e)


    def _call(fn, *args):
        ctypes.set_errno(0)
        ret = fn(*args)
        e = ctypes.get_errno()
        return {"ret": ret, "errno": e if ret == -1 else 0,
                "errname": errno.errorcode.get(e, "?") if ret == -1 else ""}


    def _in_child(fn):
        """Runs fn() in a forked child and reports what it returned, so an attempt that
        succeeds (a new namespace, say) never changes this process."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(r)
                os.write(w, json.dumps(fn()).encode())
            finally:
                os._exit(0)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        return json.loads(data) if data else {"ret": None, "error": "child reported nothing"}


    SYSCALLS = {  # name: (x86_64, aarch64)
        "clone": (56, 220), "bpf": (321, 280), "perf_event_open": (298, 241),
        "keyctl": (250, 219), "kexec_load": (246, 104), "init_module": (175, 105),
        "finit_module": (313, 273), "delete_module": (176, 106), "reboot": (169, 142),
    }


    def _nr(name):
        return SYSCALLS[name][0 if platform.machine() == "x86_64" else 1]


    def _syscall(name, *args):
        LIBC.syscall.restype = ctypes.c_long
        return _call(LIBC.syscall, ctypes.c_long(_nr(name)), *args)


    CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
    CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000


    def a_ptrace():
        child = os.fork()
        if child == 0:
            try:
                time.sleep(30)
            finally:
                os._exit(0)
        try:
            LIBC.ptrace.restype = ctypes.c_long
            res = _call(LIBC.ptrace, ctypes.c_long(16), ctypes.c_long(child), None, None)  # ATTACH
            if res["ret"] == 0:
                os.waitpid(child, 0)
                LIBC.ptrace(ctypes.c_long(17), ctypes.c_long(child), None, None)  # DETACH
            return res
        finally:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)


    def a_mount():
        target = tempfile.mkdtemp(prefix="hostile-mount-")
        try:
            res = _call(LIBC.mount, b"none", target.encode(), b"tmpfs", ctypes.c_ulong(1), None)
            if res["ret"] == 0:
                LIBC.umount2(target.encode(), 2)  # MNT_DETACH
            return res
        finally:
            try:
                os.rmdir(target)
            except OSError:
                pass


    def a_unshare(flags):
        return _in_child(lambda: _call(LIBC.unshare, ctypes.c_int(flags)))


    def a_setns():
        def attempt():
            fd = os.open("/proc/self/ns/uts", os.O_RDONLY)
            return _call(LIBC.setns, ctypes.c_int(fd), ctypes.c_int(CLONE_NEWUTS))
        return _in_child(attempt)


    def a_clone_newuser():
        def attempt():
            res = _syscall("clone", ctypes.c_ulong(CLONE_NEWUSER | signal.SIGCHLD), None, None,
                           None, None)
            if res["ret"] == 0:  # the new child: leave at once
                os._exit(0)
            if res["ret"] and res["ret"] > 0:
                os.waitpid(res["ret"], 0)
            return res
        return _in_child(attempt)


    def dangerous_syscalls():
        out = {}
        out["bpf"] = _syscall("bpf", ctypes.c_int(9999), None, ctypes.c_uint(0))
        out["perf_event_open"] = _syscall("perf_event_open", None, ctypes.c_int(0),
                                          ctypes.c_int(-1), ctypes.c_int(-1), ctypes.c_ulong(0))
        out["keyctl"] = _syscall("keyctl", ctypes.c_int(9999), ctypes.c_long(0))
        # Invalid flags: a privileged caller gets EINVAL, never a loaded kernel.
        out["kexec_load"] = _syscall("kexec_load", ctypes.c_ulong(0), ctypes.c_ulong(0), None,
                                     ctypes.c_ulong(0xdead0000))
        out["init_module"] = _syscall("init_module", None, ctypes.c_ulong(0), b"")
        out["finit_module"] = _syscall("finit_module", ctypes.c_int(-1), b"", ctypes.c_int(0))
        out["delete_module"] = _syscall("delete_module", b"nimbus_no_such_module",
                                        ctypes.c_uint(os.O_NONBLOCK))
        # Wrong magic numbers: a privileged caller gets EINVAL, never a reboot.
        out["reboot"] = _syscall("reboot", ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0), None)
        return out


    def status_fields():
        out = {}
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                         "NoNewPrivs", "Seccomp"):
                    out[k] = v.strip()
        return out


    def proc_list():
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        cmd = f.read().replace(b"\\0", b" ").decode("utf-8", "replace").strip()
                except OSError as e:
                    cmd = "?" + str(e)
                out.append({"pid": int(entry), "cmdline": cmd[:200]})
        return sorted(out, key=lambda p: p["pid"])


    def fill(path, chunk_mib, max_mib, keep):
        chunk = b"\\xa5" * (chunk_mib << 20)
        written = 0
        result = {"ok": True}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            while written < (max_mib << 20):
                try:
                    n = os.write(fd, chunk)
                except OSError as e:
                    result = _err(e)
                    break
                written += n
        finally:
            os.close(fd)
            if not keep:
                os.unlink(path)
        result["written_mib"] = round(written / (1 << 20), 1)
        return result


    def bomb(rounds):
        """Every process forks `rounds` times (2**rounds processes if nothing stops it), then
        sleeps; only the original process returns to the runtime, and it waits for the
        timeout."""
        me = os.getpid()
        failures = 0
        for _ in range(rounds):
            try:
                os.fork()
            except OSError:
                failures += 1
        if os.getpid() != me:
            try:
                while True:
                    time.sleep(60)
            finally:
                os._exit(0)
        time.sleep(3600)
        return {"failures": failures}


    def handler(event, context):
        a = event.get("action", "echo")
        if a == "echo":
            time.sleep(event.get("sleep", 0))
            r = {"event": event}
        elif a == "env":
            r = {k: v for k, v in os.environ.items()
                 if k.startswith(("AWS_LAMBDA_", "LAMBDA_", "TMPDIR", "HOME"))}
        elif a == "read":
            r = {p: _read(p) for p in event["paths"]}
        elif a == "listdir":
            r = {p: _listdir(p) for p in event["paths"]}
        elif a == "write":
            r = _write(event["path"], remove=event.get("remove", True),
                       mode=event.get("mode", "w"))
        elif a == "tmp-secret":
            r = _write(event["path"], remove=False)
            if event.get("hold_s"):
                _write(event["marker"], remove=False)
                time.sleep(event["hold_s"])
        elif a == "exists":
            r = {p: os.path.exists(p) for p in event["paths"]}
        elif a == "proc":
            r = {"processes": proc_list(), "self": os.getpid()}
        elif a == "kill":
            r = {}
            for pid in event["pids"]:
                try:
                    os.kill(int(pid), int(event.get("signal", signal.SIGKILL)))
                    r[str(pid)] = {"ok": True}
                except OSError as e:
                    r[str(pid)] = _err(e)
        elif a == "ids":
            soft_c, hard_c = resource.getrlimit(resource.RLIMIT_CORE)
            soft_n, hard_n = resource.getrlimit(resource.RLIMIT_NOFILE)
            r = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                 "status": status_fields(), "rlimit_core": [soft_c, hard_c],
                 "rlimit_nofile": [soft_n, hard_n], "rlim_infinity": resource.RLIM_INFINITY}
        elif a == "namespaces":
            r = {"ptrace": a_ptrace(), "mount": a_mount(),
                 "unshare(CLONE_NEWUSER)": a_unshare(CLONE_NEWUSER),
                 "unshare(CLONE_NEWNS)": a_unshare(CLONE_NEWNS),
                 "unshare(CLONE_NEWNET)": a_unshare(CLONE_NEWNET),
                 "setns(uts)": a_setns(), "clone(CLONE_NEWUSER)": a_clone_newuser()}
        elif a == "syscalls":
            r = dangerous_syscalls()
        elif a == "fill":
            r = fill(event["path"], event.get("chunk_mib", 8), event["max_mib"],
                     event.get("keep", False))
        elif a == "unlink":
            r = {}
            for p in event["paths"]:
                try:
                    os.unlink(p)
                    r[p] = {"ok": True}
                except OSError as e:
                    r[p] = _err(e)
        elif a == "alloc":
            n = event["mib"] << 20
            block = bytearray(n)
            block[::4096] = b"\\x01" * len(range(0, n, 4096))  # touch every page
            r = {"allocated_mib": event["mib"]}
        elif a == "bomb":
            r = bomb(event.get("rounds", 11))
        elif a == "hold":
            time.sleep(event["seconds"])
            r = {}
        elif a == "http":
            r = [raw_http(**req) for req in event["requests"]]
        elif a == "steal":
            # Asks another instance's Runtime API for its next event, then answers it (or, with
            # no event, a made-up request id) with a forged result and a forged error.
            api, rt = event["addr"], "/2018-06-01/runtime/invocation/"
            got = raw_http(api, "GET", rt + "next", read_timeout=event.get("wait_s", 4))
            rid = ((got.get("headers") or {}).get("lambda-runtime-aws-request-id")
                   or event["fake_id"])
            r = [got,
                 raw_http(api, "POST", rt + rid + "/response", body='{"stolen": true}'),
                 raw_http(api, "POST", rt + event["fake_id"] + "/error",
                          body='{"errorType": "Stolen", "errorMessage": "forged"}')]
        else:
            raise ValueError("unknown action " + a)
        return {"instance": INSTANCE, "result": r}
    ''') + "\n\n" + inspect.getsource(raw_http)


def probe_files(name, extra_yaml="", **manifest_kw):
    """The files of a probe function (python3, handler app.handler) named `name`; extra_yaml
    is appended to its function.yaml (for keys the harness's manifest_text does not know)."""
    return {"function.yaml": h.manifest_text(name, "python3", "app.handler", **manifest_kw)
            + extra_yaml,
            "app.py": PROBE_APP}


def dump(value):
    return json.dumps(value, indent=1, sort_keys=True)[:6000]


class ProbeMixin:
    """Helpers for test cases (mixed into nimbus_harness.NimbusTestCase subclasses) that deploy
    probe functions and read their reports."""

    def deploy_probe(self, base, extra_yaml="", extra_files=None, **manifest_kw):
        name = h.unique_name(base)
        files = probe_files(name, extra_yaml, **manifest_kw)
        files.update(extra_files or {})
        self.nimbus.deploy_files(self.scratch, files)
        return name

    def probe(self, name, event, timeout=30.0):
        """Invokes the probe and returns (instance, result); fails with the answer when the
        function did not report (a function error, a non-200 status, a dead daemon)."""
        try:
            r = self.nimbus.invoke(name, event, timeout=timeout)
        except OSError as e:
            self.fail(f"invoking {name} with {event.get('action')!r} got no answer: {e!r}; "
                      f"{self.daemon_state()}")
        self.assertEqual(r.status, 200, f"invoking {name} with {event.get('action')!r}: {r!r}; "
                                        f"{self.daemon_state()}")
        self.assertIsNone(r.header("X-Amz-Function-Error"),
                          f"the probe failed instead of reporting: {r.text()[:3000]}")
        body = r.json()
        return body["instance"], body["result"]

    def daemon_state(self):
        code = self.nimbus.proc.poll()
        if code is None:
            return "the daemon is running"
        if code < 0:
            return f"the daemon is NOT running: killed by {signal.Signals(-code).name}"
        return f"the daemon is NOT running: exited with status {code}"

    def assertDaemonAnswers(self, context):
        self.assertIsNone(self.nimbus.proc.poll(), f"{context}: {self.daemon_state()}")
        try:
            r = self.nimbus.request("GET", "/v1/functions", timeout=5)
        except OSError as e:
            self.fail(f"{context}: the daemon does not answer GET /v1/functions: {e!r}; "
                      f"{self.daemon_state()}")
        self.assertEqual(r.status, 200, f"{context}: GET /v1/functions answered {r!r}")
