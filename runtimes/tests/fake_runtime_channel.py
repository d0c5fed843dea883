"""A fake daemon end of the runtime channel (docs/runtime-channel.md) for the conformance tests.

FakeRuntimeChannel has the same test-facing surface as fake_runtime_api.FakeRuntimeApi
(add_event, wait_result, wait_init_error, close, address), so a suite runs its cases over either
transport. For each runtime it launches it makes a socketpair and hands one end to the runtime as
fd 4 with NIMBUS_RUNTIME_FD=4; AWS_LAMBDA_RUNTIME_API points at a TCP port that refuses
connections, so a runtime that ignored the channel fails instead of passing over HTTP. It
answers every `N` with a queued event, records `R`, `F` and `I` frames, and refuses results for
unknown request ids with `X 400 InvalidRequestID`, as the daemon does. It also keeps what the
channel-specific cases check: every frame with the reads (recv calls) it arrived in, so a test
can see that a result and the next `N` came in one read, and protocol misuse (an unknown frame,
a second `N` while one is pending).

ChannelCases holds the channel-specific cases; a runtime's suite mixes it in with its own
start_echo / start_init_failure hooks.

Threading: one reader thread per launched runtime parses what it writes; every shared field is
guarded by FakeRuntimeChannel.cond, and tests read results through the wait_* methods. Writes to
the runtime go through send_lock, never while holding cond.
"""

import collections
import fcntl
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import termios
import threading
import time
import unittest
import uuid

from fake_runtime_api import TIMEOUT_MS, WAIT_S, Result, RuntimeTestCase

RUNTIME_FD = 4
ARN = "arn:aws:lambda:local:000000000000:function:test-fn"


class Frame:
    """One frame the runtime wrote, with the indexes of the reads its first and last byte came in."""

    def __init__(self, letter, fields, sections, first_read, last_read):
        self.letter = letter        # "N" | "R" | "F" | "I"
        self.fields = fields        # the header's fields after the letter (bytes)
        self.sections = sections    # the sections (bytes)
        self.first_read = first_read
        self.last_read = last_read

    def __repr__(self):
        return "Frame(%s %s, reads %d..%d)" % (self.letter, b" ".join(self.fields).decode("latin-1"),
                                              self.first_read, self.last_read)


def event_frame(request_id, body, deadline_ms=None, arn=ARN, trace_id=b"", client_context=b"",
                cognito_identity=b""):
    """The bytes of an `E` frame."""
    if deadline_ms is None:
        deadline_ms = int(time.time() * 1000) + TIMEOUT_MS
    sections = [arn.encode() if isinstance(arn, str) else arn, trace_id, client_context,
                cognito_identity, body]
    head = "E %s %d %s\n" % (request_id, deadline_ms, " ".join(str(len(s)) for s in sections))
    return head.encode() + b"".join(sections)


def refusal_frame(status, error_type, message):
    """The bytes of an `X` frame."""
    t, m = error_type.encode(), message.encode()
    return b"X %d %d %d\n%s%s" % (status, len(t), len(m), t, m)


# Header fields after the letter, and which of them are section lengths, per runtime frame.
_RUNTIME_FRAMES = {b"N": (0, 0), b"R": (2, 1), b"F": (3, 2), b"I": (2, 2)}


class FakeRuntimeChannel:
    def __init__(self):
        self.cond = threading.Condition()
        self.send_lock = threading.Lock()
        self.events = collections.deque()  # E frames waiting for an N
        self.dispatch = True                # answer each N with a queued event
        self.credits = 0                    # Ns not yet answered with an E
        self.pending = set()                # request ids sent and not yet answered
        self.results = {}
        self.init_errors = []
        self.frames = []                    # every frame of the current channel, in order
        self.reads = []                     # bytes returned by each recv on the current channel
        self.refusals_sent = []
        self.problems = []                  # protocol misuse by the runtime
        self.runtime_closed = False         # the runtime closed its end of the current channel
        self.sock = None
        self._peer = None
        self._threads = []
        # AWS_LAMBDA_RUNTIME_API for channel runs: bound but not listening, so connecting fails.
        self._decoy = socket.socket()
        self._decoy.bind(("127.0.0.1", 0))

    @property
    def address(self):
        return "127.0.0.1:%d" % self._decoy.getsockname()[1]

    # ------------------------------------------------------------------ launching

    def launch(self, argv):
        """Opens a fresh channel for a runtime about to start; returns (argv, env, Popen kwargs)
        that hand it over as fd 4."""
        self._close_channel()
        self.sock, self._peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.cond:
            self.frames = []
            self.reads = []
            self.credits = 0
            self.runtime_closed = False
        thread = threading.Thread(target=self._read_loop, args=(self.sock,), daemon=True)
        thread.start()
        self._threads.append(thread)
        peer = self._peer.fileno()
        # subprocess cannot renumber an fd, and a preexec_fn dup2 may land on its own error
        # pipe; bash renumbers it just before exec instead.
        script = 'exec "$0" "$@"' if peer == RUNTIME_FD else 'exec "$0" "$@" %d<&%d %d<&-' % (
            RUNTIME_FD, peer, peer)
        return (["/bin/bash", "-c", script] + argv, {"NIMBUS_RUNTIME_FD": str(RUNTIME_FD)},
                {"pass_fds": (peer,)})

    def launched(self):
        # Only the runtime holds the peer now, so its exit is an end of file here.
        self._peer.close()
        self._peer = None

    def _close_channel(self):
        for s in (self.sock, self._peer):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
        self.sock = self._peer = None

    def close(self):
        self._close_channel()
        for thread in self._threads:
            thread.join(WAIT_S)
        self._decoy.close()

    def close_channel(self):
        """Closes the daemon's end, as the daemon does when it stops the instance."""
        self.sock.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------------ sending

    def add_event(self, event, deadline_ms=None, client_context=None, cognito_identity=None,
                  trace_id=None, raw_body=None, known=True):
        """Queues an event for the next N; returns its request id. known=False: the fake then
        refuses the runtime's result with 400, as for an invocation that is not running."""
        request_id = str(uuid.uuid4())
        frame = event_frame(
            request_id, raw_body if raw_body is not None else json.dumps(event).encode(),
            deadline_ms=deadline_ms,
            trace_id=(trace_id or "Root=1-00000000-%s;Parent=0000000000000001;Sampled=0"
                      % request_id[:24].replace("-", "")).encode(),
            client_context=json.dumps(client_context).encode() if client_context is not None else b"",
            cognito_identity=json.dumps(cognito_identity).encode() if cognito_identity is not None else b"")
        with self.cond:
            if known:
                self.pending.add(request_id)
            self.events.append(frame)
        self._pump()
        return request_id

    def expect(self, request_id):
        """Marks a request id sent by hand (send) as running, so its result is accepted."""
        with self.cond:
            self.pending.add(request_id)

    def send(self, data, events=0):
        """Writes raw bytes to the runtime; `events`: how many E frames they hold."""
        with self.cond:
            self.credits -= events
        with self.send_lock:
            self.sock.sendall(data)

    def wait_drained(self, timeout=WAIT_S):
        """Waits until the runtime has read everything written to it (SIOCOUTQ: bytes the peer
        has not read yet), so the next write arrives in a read of its own."""
        deadline = time.monotonic() + timeout
        while struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]:
            if time.monotonic() > deadline:
                raise AssertionError("the runtime did not read what was sent within %.0f s" % timeout)
            time.sleep(0.001)

    def _pump(self):
        while True:
            with self.cond:
                if not (self.dispatch and self.credits > 0 and self.events):
                    return
                frame = self.events.popleft()
                self.credits -= 1
            with self.send_lock:
                try:
                    self.sock.sendall(frame)
                except OSError:
                    return  # the runtime is gone; the test sees it missing its result

    def _refuse(self, status, error_type, message):
        with self.cond:
            self.refusals_sent.append((status, error_type))
            self.cond.notify_all()
        with self.send_lock:
            try:
                self.sock.sendall(refusal_frame(status, error_type, message))
            except OSError:
                pass

    # ------------------------------------------------------------------ reading

    def _read_loop(self, sock):
        buf = bytearray()
        frame_start = 0  # index of the read holding the first byte of the frame at buf[0]
        while True:
            try:
                chunk = sock.recv(1 << 22)
            except OSError:
                chunk = b""
            with self.cond:
                if sock is not self.sock:
                    return  # a later launch replaced this channel
                if not chunk:
                    self.runtime_closed = True
                    self.cond.notify_all()
                    return
                self.reads.append(len(chunk))
                read = len(self.reads) - 1
            if not buf:
                frame_start = read
            buf += chunk
            while True:
                frame, used = self._parse(buf, frame_start, read)
                if frame is None:
                    break
                del buf[:used]
                frame_start = read
                self._on_frame(frame)
                if used == 0:
                    return

    def _parse(self, buf, first_read, read):
        """(frame, bytes used) for a complete frame at the start of buf, else (None, 0)."""
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > 256:
                return Frame(b"?", [bytes(buf[:64])], [], first_read, read), 0
            return None, 0
        parts = bytes(buf[:nl]).split(b" ")
        letter, fields = parts[0], parts[1:]
        shape = _RUNTIME_FRAMES.get(letter)
        if nl > 256 or shape is None or len(fields) != shape[0] or not all(
                f.isdigit() for f in fields[len(fields) - shape[1]:]):
            return Frame(b"?", [bytes(buf[:nl])], [], first_read, read), 0
        lengths = [int(f) for f in fields[len(fields) - shape[1]:]]
        end = nl + 1 + sum(lengths)
        if len(buf) < end:
            return None, 0
        sections, at = [], nl + 1
        for n in lengths:
            sections.append(bytes(buf[at:at + n]))
            at += n
        return Frame(letter.decode(), fields, sections, first_read, read), end

    def _on_frame(self, frame):
        refuse = None
        with self.cond:
            self.frames.append(frame)
            if frame.letter == "?":
                self.problems.append("unexpected frame %r" % frame.fields[0])
            elif frame.letter == "N":
                self.credits += 1
                if self.credits > 1:
                    self.problems.append("a second N while one is pending (frame %d)" % len(self.frames))
            elif frame.letter == "I":
                headers = {"lambda-runtime-function-error-type": frame.sections[0].decode()} \
                    if frame.sections[0] else {}
                self.init_errors.append(Result("init_error", frame.sections[1], headers))
            else:
                request_id = frame.fields[0].decode("latin-1")
                if request_id in self.pending:
                    self.pending.discard(request_id)
                    if frame.letter == "R":
                        self.results[request_id] = Result("response", frame.sections[0], {})
                    else:
                        headers = {"lambda-runtime-function-error-type": frame.sections[0].decode()} \
                            if frame.sections[0] else {}
                        self.results[request_id] = Result("error", frame.sections[1], headers)
                else:
                    refuse = (400, "InvalidRequestID", "Invalid request ID")
            self.cond.notify_all()
        if refuse:
            self._refuse(*refuse)
        self._pump()

    # ------------------------------------------------------------------ waiting

    def _wait(self, ready, what, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("%s within %.0f s; frames so far: %s" % (what, timeout, self.frames))
                self.cond.wait(left)

    def wait_result(self, request_id, timeout=WAIT_S):
        self._wait(lambda: request_id in self.results, "no result for %s" % request_id, timeout)
        return self.results[request_id]

    def wait_init_error(self, timeout=WAIT_S):
        self._wait(lambda: self.init_errors, "no init error", timeout)
        return self.init_errors[0]

    def wait_frames(self, letter, count, timeout=WAIT_S):
        """Waits until the runtime has written `count` frames with this letter; returns all frames."""
        self._wait(lambda: sum(f.letter == letter for f in self.frames) >= count,
                   "fewer than %d %s frames" % (count, letter), timeout)
        with self.cond:
            return list(self.frames)

    def wait_refusals(self, count, timeout=WAIT_S):
        self._wait(lambda: len(self.refusals_sent) >= count, "fewer than %d refusals" % count, timeout)

    def wait_runtime_closed(self, timeout=WAIT_S):
        self._wait(lambda: self.runtime_closed, "the runtime did not close the channel", timeout)


class ChannelRuntimeTestCase(RuntimeTestCase):
    """RuntimeTestCase over the runtime channel instead of the HTTP Runtime API."""

    TRANSPORT = "channel"

    def make_fake(self):
        return FakeRuntimeChannel()

    def tearDown(self):
        problems = list(self.fake.problems)
        super().tearDown()
        self.assertEqual(problems, [], "the runtime misused the channel")


# What a primed runtime starts with (ProcessLauncherOptions::primed_env and what the launcher
# adds); the rest of the function's environment comes in the `A` frame.
_PRIMING_KEYS = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONUNBUFFERED", "LAMBDA_RUNTIME_DIR",
                 "AWS_LAMBDA_RUNTIME_API", "NIMBUS_RUNTIME_FD")


def assignment_frame(environ):
    """The bytes of an `A` frame carrying `environ` (a dict)."""
    entries = b"".join(("%s=%s" % kv).encode() + b"\0" for kv in environ.items())
    return b"A %d\n" % len(entries) + entries


class PrimedChannelRuntimeTestCase(ChannelRuntimeTestCase):
    """ChannelRuntimeTestCase for a primed instance: the runtime starts in an empty directory
    with only the priming environment and NIMBUS_PRIMED=1, then gets the function's environment
    (task root included) in an `A` frame, as the launcher's hand-off sends it."""

    TRANSPORT = "primed channel"

    def spawn(self, argv, environ, popen_args):
        empty = os.path.join(self.tmp, "not-yet-task")
        os.makedirs(empty, exist_ok=True)
        priming = {k: v for k, v in environ.items() if k in _PRIMING_KEYS}
        priming.update({"NIMBUS_PRIMED": "1", "NIMBUS_PRIMED_SPACE": "-" * 32768, "LAMBDA_TASK_ROOT": empty,
                        "TZ": ":UTC"})
        proc = subprocess.Popen(argv, cwd=empty, env=priming, **popen_args)
        self.fake.send(assignment_frame(environ))
        return proc


class PrimedCases:
    """Cases of a primed runtime's hand-off, shared by the python3 and nodejs suites. The suite
    provides BOOTSTRAP (the runtime's executable), start_tz_offset(env): starts a runtime whose
    handler returns the local time's offset from UTC in minutes east, and start_env_probe(env):
    one whose handler returns the output of `env` run as a child process."""

    def test_the_time_zone_given_at_the_hand_off_applies(self):
        self.start_tz_offset(env={"TZ": "JST-9"})
        self.assertResponse(self.invoke({}), 540)

    def test_the_process_shows_its_functions_environment_after_the_hand_off(self):
        self.start_env_probe(env={"FOO": "bar"})
        shown = self.invoke({})
        self.assertEqual(shown.kind, "response", shown)
        with open("/proc/%d/environ" % self.proc.pid, "rb") as f:
            entries = [e for e in f.read().split(b"\0") if e]
        self.assertIn(b"AWS_LAMBDA_FUNCTION_NAME=test-fn", entries)
        self.assertIn(b"FOO=bar", entries)
        self.assertFalse([e for e in entries if e.startswith(b"NIMBUS_PRIMED")], entries)
        # A program the handler starts inherits the function's environment, intact.
        child = dict(line.split("=", 1) for line in shown.json().splitlines() if "=" in line)
        self.assertEqual(child.get("FOO"), "bar")
        self.assertEqual(child.get("PATH"), "/usr/local/bin:/usr/bin:/bin")
        self.assertEqual(child.get("LAMBDA_TASK_ROOT"), self.task_root)
        self.assertNotIn("NIMBUS_PRIMED", child)
        self.assertNotIn("NIMBUS_PRIMED_SPACE", child)

    def start_primed_only(self):
        """Starts the runtime primed, with no hand-off sent; its output goes to err.log."""
        argv, fake_env, popen_args = self.fake.launch([self.BOOTSTRAP])
        environ = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "NIMBUS_PRIMED": "1",
                   "AWS_LAMBDA_RUNTIME_API": self.fake.address}
        environ.update(fake_env)
        with open(os.path.join(self.tmp, "err.log"), "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=self.tmp, env=environ, stdout=err, stderr=err, **popen_args)
        self.fake.launched()

    def primed_output(self):
        with open(os.path.join(self.tmp, "err.log"), "rb") as f:
            return f.read()

    def test_a_runtime_stopped_before_its_hand_off_exits_quietly(self):
        self.start_primed_only()
        self.fake.close_channel()
        self.assertEqual(self.proc.wait(WAIT_S), 0)
        self.assertEqual(self.primed_output(), b"")

    def test_a_malformed_hand_off_ends_the_runtime_with_a_message(self):
        self.start_primed_only()
        self.fake.send(b"A 7\nno-eq\0\0")
        self.assertEqual(self.proc.wait(WAIT_S), 1)
        self.assertIn(b"an environment entry without '='", self.primed_output())


def strace_works():
    if not shutil.which("strace"):
        return False
    return subprocess.run(["strace", "-qq", "-o", os.devnull, "true"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


# A handler-independent event and its expected echo.
ECHO_EVENT = {"echo": [1, "two", {"3": None}]}


class ChannelCases:
    """Channel-specific cases, shared by the three runtimes' suites. The suite provides:
    start_echo(env=None, wrapper=None): starts a runtime whose handler returns its event, and
      fails the invocation (an error result) for the event {"op": "throw"};
    start_init_failure(): starts a runtime whose initialisation fails."""

    def test_initialisation_ends_with_a_lone_N_in_a_read_of_its_own(self):
        self.fake.dispatch = False
        self.start_echo()
        frames = self.fake.wait_frames("N", 1)
        self.assertEqual(frames[0].letter, "N")
        self.assertEqual(self.fake.reads[0], 2, "the first read held more than the N frame")

    def test_each_result_and_the_next_N_arrive_in_one_read(self):
        self.start_echo()
        for i in range(12):
            if i % 4 == 3:
                self.assertEqual(self.invoke({"op": "throw"}).kind, "error")
            else:
                self.assertResponse(self.invoke({"i": i}), {"i": i})
        frames = self.fake.wait_frames("N", 13)
        self.assertEqual([f.letter for f in frames], ["N"] + ["R", "N", "R", "N", "R", "N", "F", "N"] * 3)
        for result, following in zip(frames[1::2], frames[2::2]):
            # The fake's reader waits in recv, so an N that trails its result (sent after more
            # work) arrives in a read of its own. Two writes in quick succession can still be
            # glued by the kernel; the strace case below counts the writes themselves.
            self.assertEqual((result.first_read, result.last_read), (following.first_read, following.last_read),
                             "%s and %s came in different reads" % (result, following))

    def test_the_channel_needs_no_runtime_api_address(self):
        self.start_echo(env={"AWS_LAMBDA_RUNTIME_API": None})
        self.assertResponse(self.invoke(ECHO_EVENT), ECHO_EVENT)

    def test_an_event_split_across_many_reads_is_reassembled(self):
        self.fake.dispatch = False
        self.start_echo()
        self.fake.wait_frames("N", 1)
        request_id = str(uuid.uuid4())
        body = json.dumps({"split": "y" * 1000}).encode()
        frame = event_frame(request_id, body, trace_id=b"Root=1-split",
                            client_context=b'{"custom":{"k":"v"}}', cognito_identity=b'{"cognitoIdentityId":"i"}')
        header_end = frame.index(b"\n") + 1
        # After the letter, inside the request id and the numbers, either side of the newline,
        # inside and between sections, inside the body.
        cuts = [1, 2, 5, 40, header_end - 1, header_end, header_end + 3, header_end + len(ARN),
                len(frame) - len(body) - 4, len(frame) - len(body), len(frame) - 500, len(frame) - 1]
        self.fake.expect(request_id)
        start = 0
        for i, cut in enumerate(sorted(set(cuts)) + [len(frame)]):
            self.fake.send(frame[start:cut], events=1 if i == 0 else 0)
            self.fake.wait_drained()
            start = cut
        self.assertResponse(self.fake.wait_result(request_id), json.loads(body))

    def test_several_frames_in_one_read_are_all_handled_in_order(self):
        self.fake.dispatch = False
        self.start_echo()
        self.fake.wait_frames("N", 1)
        first, second = str(uuid.uuid4()), str(uuid.uuid4())
        self.fake.expect(first)
        self.fake.expect(second)
        self.fake.send(event_frame(first, b'{"n":1}')
                       + refusal_frame(403, "InvalidStateTransition", "only one N at a time")
                       + event_frame(second, b'{"n":2}'), events=2)
        self.assertResponse(self.fake.wait_result(first), {"n": 1})
        self.assertResponse(self.fake.wait_result(second), {"n": 2})
        self.assertIn("nimbus runtime: refused (403 InvalidStateTransition): only one N at a time\n",
                      self.stderr())

    def test_a_5_MiB_event_and_its_5_MiB_echo_cross_the_channel(self):
        self.start_echo()
        big = {"big": "x" * (5 * 1024 * 1024)}
        self.assertResponse(self.invoke(big), big)
        # ...and the runtime is back to small events.
        self.assertResponse(self.invoke(ECHO_EVENT), ECHO_EVENT)

    def test_a_refusal_is_logged_and_the_runtime_keeps_serving(self):
        self.start_echo()
        self.fake.add_event({"stale": True}, known=False)
        self.fake.wait_refusals(1)
        self.assertResponse(self.invoke(ECHO_EVENT), ECHO_EVENT)
        self.assertIn("nimbus runtime: refused (400 InvalidRequestID): Invalid request ID\n", self.stderr())
        self.assertIsNone(self.proc.poll())

    def test_a_410_refusal_ends_the_runtime(self):
        self.fake.dispatch = False
        self.start_echo()
        self.fake.wait_frames("N", 1)
        self.fake.send(refusal_frame(410, "InstanceStopped", "the instance was stopped"))
        self.assertEqual(self.wait_exit(), 0)
        self.assertIn("nimbus runtime: refused (410 InstanceStopped): the instance was stopped\n", self.stderr())

    def test_the_end_of_the_channel_ends_the_runtime(self):
        self.start_echo()
        self.assertResponse(self.invoke(ECHO_EVENT), ECHO_EVENT)
        self.fake.wait_frames("N", 2)
        self.fake.close_channel()
        self.assertEqual(self.wait_exit(), 0)

    def test_a_malformed_frame_ends_the_runtime_with_a_message(self):
        self.fake.dispatch = False
        self.start_echo()
        self.fake.wait_frames("N", 1)
        self.fake.send(b"E only-an-id\n")
        self.assertEqual(self.wait_exit(), 1)
        self.assertIn("protocol error on the runtime channel", self.stderr())

    def test_an_init_failure_sends_one_I_frame_and_no_N(self):
        self.start_init_failure()
        self.fake.wait_init_error()
        self.assertNotEqual(self.wait_exit(), 0)
        self.fake.wait_runtime_closed()
        self.assertEqual([f.letter for f in self.fake.frames], ["I"])

    @unittest.skipUnless(strace_works(), "needs strace, allowed to trace")
    def test_an_invocation_costs_one_read_and_one_write_on_the_channel(self):
        log = os.path.join(self.tmp, "strace.log")
        self.start_echo(wrapper=["strace", "-f", "-qq", "-o", log, "-e", "signal=none", "-e",
                                 "trace=read,readv,recvfrom,recvmsg,write,writev,sendto,sendmsg", "--"])
        invocations = 10
        for i in range(invocations):
            if i == 4:
                self.assertEqual(self.invoke({"op": "throw"}).kind, "error")
            else:
                self.assertResponse(self.invoke({"i": i}), {"i": i})
        self.fake.wait_frames("N", invocations + 1)
        self.fake.close_channel()
        self.assertEqual(self.wait_exit(), 0)
        with open(log) as f:
            calls = [line for line in f
                     if re.match(r"^\d+\s+\w+\(%d," % RUNTIME_FD, line)]
        writes = [c for c in calls if re.match(r"^\d+\s+(write|writev|sendto|sendmsg)\(", c)]
        reads = [c for c in calls if re.match(r"^\d+\s+(read|readv|recvfrom|recvmsg)\(", c)]
        # The lone N, then one result-and-N per invocation; one read per event, one for the end.
        self.assertEqual(len(writes), invocations + 1, "".join(writes))
        self.assertEqual(len(reads), invocations + 1, "".join(reads))
        self.assertEqual([c for c in calls if "EAGAIN" in c], [])
