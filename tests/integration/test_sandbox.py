#!/usr/bin/env python3
"""Every function instance is confined: hostile python3 functions try to read the host's
secrets and the daemon's data, write their own code, see and signal host processes, gain
privileges through ptrace, mount or new namespaces, share /tmp with other instances, and
exhaust disk, memory and processes. Each attempt is made for real inside an instance, which
reports what it observed (hostile_probe.PROBE_APP); the tests assert the sandbox's contract:
own mount, PID, IPC and UTS namespaces, a root with only the host's system
directories read-only, a minimal /etc, /var/task read-only, a private /tmp capped by
`ephemeral_storage`, an unprivileged uid with no capabilities, no_new_privs and seccomp, and
cgroup limits on memory and processes that leave the daemon and other functions answering."""

import errno
import glob
import os
import secrets
import shutil
import sys
import textwrap
import threading
import time

import hostile_probe as p
import nimbus_harness as h

EPHEMERAL_DEFAULT_MIB = 512


def refused(attempt):
    """A probe's file attempt that failed, whatever the errno."""
    return isinstance(attempt, dict) and attempt.get("ok") is False


def refused_with_eperm(call):
    """A probe's system call that returned -1 with errno EPERM."""
    return call.get("ret") == -1 and call.get("errno") == errno.EPERM


class ConfinementTest(p.ProbeMixin, h.NimbusTestCase):
    """Attempts that leave the daemon running even where the sandbox is missing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.secret = secrets.token_hex(16)
        cls.f1 = h.unique_name("hostile-f1")
        cls.f2 = h.unique_name("hostile-f2")
        cls.nimbus.deploy_files(cls.scratch, p.probe_files(cls.f1))
        files = p.probe_files(cls.f2)
        files["secret.txt"] = cls.secret
        cls.nimbus.deploy_files(cls.scratch, files)

    # --- the file system -------------------------------------------------------------------

    def test_etc_shadow_cannot_be_read(self):
        _, r = self.probe(self.f1, {"action": "read", "paths": ["/etc/shadow"]})
        self.assertTrue(refused(r["/etc/shadow"]),
                        f"the function read the host's /etc/shadow: {p.dump(r)}")

    def test_the_daemons_data_directory_is_out_of_reach(self):
        data = self.nimbus.data_dir
        files = [os.path.join(data, n) for n in ("nimbus.db", "admin.token", "queue.db")]
        dirs = [data, os.path.join(data, "code"), os.path.join(data, "packages")]
        self.assertTrue(os.path.exists(files[0]), f"precondition: no {files[0]} on the host")
        _, read = self.probe(self.f1, {"action": "read", "paths": files})
        _, listed = self.probe(self.f1, {"action": "listdir", "paths": dirs})
        reached = {path: r for path, r in {**read, **listed}.items() if not refused(r)}
        self.assertFalse(reached, f"the function reached the daemon's data directory {data}: "
                                  f"{p.dump(reached)}")

    def test_another_functions_code_cannot_be_read_by_its_host_path(self):
        sha = self.nimbus.function(self.f2)["code_sha256"]
        code_dir = os.path.join(self.nimbus.data_dir, "code", sha)
        secret_file = os.path.join(code_dir, "secret.txt")
        with open(secret_file) as f:  # precondition: the host path is right
            self.assertEqual(f.read(), self.secret)
        _, read = self.probe(self.f1, {"action": "read", "paths": [secret_file]})
        _, listed = self.probe(self.f1, {"action": "listdir", "paths": [code_dir]})
        self.assertTrue(refused(read[secret_file]),
                        f"{self.f1} read {self.f2}'s code at {secret_file}: {p.dump(read)}")
        self.assertTrue(refused(listed[code_dir]),
                        f"{self.f1} listed {self.f2}'s code at {code_dir}: {p.dump(listed)}")

    def test_the_function_code_at_var_task_is_read_only(self):
        _, env = self.probe(self.f1, {"action": "env"})
        root = env.get("LAMBDA_TASK_ROOT", "")
        new_file = os.path.join(root, f"hostile-{secrets.token_hex(4)}")
        _, created = self.probe(self.f1, {"action": "write", "path": new_file})
        _, appended = self.probe(self.f1, {"action": "write", "mode": "a",
                                           "path": os.path.join(root, "app.py")})
        for what, r in (("create " + new_file, created), ("open app.py for append", appended)):
            self.assertTrue(refused(r), f"the function could {what} in its task root {root}")
            self.assertIn(r["errno"], (errno.EROFS, errno.EACCES),
                          f"{what} in {root} failed, but not as read-only: {p.dump(r)}")
        self.assertEqual(root, "/var/task", f"LAMBDA_TASK_ROOT: {p.dump(env)}")

    # --- processes --------------------------------------------------------------------------

    def test_proc_lists_only_the_instances_own_processes(self):
        _, r = self.probe(self.f1, {"action": "proc"})
        procs = r["processes"]
        daemon_pid = self.nimbus.proc.pid
        me = os.path.basename(__file__)
        host_seen = [q for q in procs
                     if (" serve " in f" {q['cmdline']} " and "nimbus" in q["cmdline"])
                     or me in q["cmdline"]]
        self.assertFalse(host_seen, f"the function sees host processes (the daemon, pid "
                                    f"{daemon_pid}, or this test) among the {len(procs)} in its "
                                    f"/proc: {p.dump(host_seen)}")
        daemon = [q for q in procs if q["pid"] == daemon_pid]
        self.assertFalse(daemon and "serve" in daemon[0]["cmdline"],
                         f"the daemon's host pid {daemon_pid} is visible: {daemon}")
        self.assertLessEqual(len(procs), 8, "the function's /proc lists more than its own few "
                                            f"processes: {len(procs)}, e.g. {procs[:20]}")

    def test_the_instance_runs_as_an_unprivileged_uid(self):
        _, r = self.probe(self.f1, {"action": "ids"})
        self.assertNotEqual(r["uid"], 0, f"the instance runs as root: {p.dump(r)}")
        self.assertNotEqual(r["euid"], 0, f"the instance runs as root: {p.dump(r)}")

    def test_the_instance_has_no_capabilities_no_new_privs_and_a_seccomp_filter(self):
        _, r = self.probe(self.f1, {"action": "ids"})
        st = r["status"]
        caps = {k: st[k] for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")
                if int(st[k], 16) != 0}
        self.assertFalse(caps, f"the instance holds capabilities: {p.dump(st)}")
        self.assertEqual(st["NoNewPrivs"], "1", f"no_new_privs is not set: {p.dump(st)}")
        self.assertEqual(st["Seccomp"], "2", f"no seccomp filter: {p.dump(st)}")

    def test_core_dumps_are_off_and_open_files_are_bounded(self):
        _, r = self.probe(self.f1, {"action": "ids"})
        self.assertEqual(r["rlimit_core"], [0, 0],
                         f"RLIMIT_CORE (soft, hard) lets the function dump core: {p.dump(r)}")
        soft, hard = r["rlimit_nofile"]
        self.assertNotEqual(hard, r["rlim_infinity"], f"RLIMIT_NOFILE is unbounded: {p.dump(r)}")
        self.assertLessEqual(hard, 65536, f"RLIMIT_NOFILE hard limit is not bounded: {p.dump(r)}")
        self.assertLessEqual(soft, hard)

    def test_ptrace_mount_and_new_namespaces_are_refused_with_eperm(self):
        _, r = self.probe(self.f1, {"action": "namespaces"})
        allowed = {k: v for k, v in r.items() if not refused_with_eperm(v)}
        self.assertFalse(allowed, f"these calls were not refused with EPERM: {p.dump(allowed)}")

    def test_kernel_facing_syscalls_are_refused_with_eperm(self):
        _, r = self.probe(self.f1, {"action": "syscalls"})
        allowed = {k: v for k, v in r.items() if not refused_with_eperm(v)}
        self.assertFalse(allowed, "these system calls reached the kernel instead of being "
                                  f"refused with EPERM by seccomp: {p.dump(allowed)}")

    # --- /tmp -------------------------------------------------------------------------------

    def test_tmp_is_private_to_each_instance(self):
        f3 = self.deploy_probe("hostile-tmp", timeout=30)
        tok = secrets.token_hex(8)
        secret, marker = f"/tmp/hostile-secret-{tok}", f"/tmp/hostile-holding-{tok}"
        holder = {}

        def write_and_hold():
            holder["answer"] = self.nimbus.invoke(
                f3, {"action": "tmp-secret", "path": secret, "marker": marker, "hold_s": 6},
                timeout=30)

        t = threading.Thread(target=write_and_hold)
        t.start()
        try:
            # Instance A has written the secret once its marker shows in its own root; the
            # host sees an instance's files through /proc/PID/root.
            def holding():
                return any(os.path.exists(f"/proc/{pid}/root{marker}")
                           for pid in h.instance_pids(f3))
            if not h.wait_until(holding, 15):
                t.join()
                self.fail(f"precondition: instance A of {f3} never wrote {marker}: "
                          f"{holder.get('answer')!r}")
            # A is busy holding, so this runs on a second, concurrent instance of f3.
            b_instance, b_seen = self.probe(f3, {"action": "exists", "paths": [secret]})
            _, f2_seen = self.probe(self.f2, {"action": "exists", "paths": [secret]})
            t.join()
            a = holder["answer"]
            self.assertEqual(a.status, 200, repr(a))
            self.assertIsNone(a.header("X-Amz-Function-Error"), repr(a))
            self.assertEqual(a.json()["result"], {"ok": True}, f"A could not write {secret}")
            self.assertNotEqual(b_instance, a.json()["instance"],
                                "precondition: the second invoke ran on instance A")
            self.assertFalse(b_seen[secret], f"a second instance of {f3} sees A's {secret}")
            self.assertFalse(f2_seen[secret], f"{self.f2} sees {f3}'s {secret}")
        finally:
            t.join()
            for path in (secret, marker):  # on the host's /tmp when instances share it
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def test_filling_tmp_stops_at_ephemeral_storage_and_spares_other_functions(self):
        # tmpfs pages count against the instance's memory limit, so the function gets room
        # for a full /tmp; 1024 MiB is twice the default ephemeral_storage.
        cap = 2 * EPHEMERAL_DEFAULT_MIB
        filler = self.deploy_probe("hostile-fill", memory=cap + 256, timeout=120)
        path = f"/tmp/hostile-fill-{secrets.token_hex(6)}"
        try:
            _, r = self.probe(filler, {"action": "fill", "path": path, "chunk_mib": 8,
                                       "max_mib": cap, "keep": True}, timeout=150)
            self.assertFalse(r.get("ok"), f"the function wrote {r.get('written_mib')} MiB to "
                                          f"/tmp without running out of space: {p.dump(r)}")
            self.assertEqual(r.get("errno"), errno.ENOSPC, f"filling /tmp: {p.dump(r)}")
            self.assertGreaterEqual(r["written_mib"], EPHEMERAL_DEFAULT_MIB - 64, p.dump(r))
            self.assertLessEqual(r["written_mib"], EPHEMERAL_DEFAULT_MIB + 8, p.dump(r))
            # The filler's instance stays up with its /tmp full; another function's is untouched.
            other = f"/tmp/hostile-after-fill-{secrets.token_hex(6)}"
            _, w = self.probe(self.f2, {"action": "write", "path": other})
            self.assertEqual(w, {"ok": True}, f"{self.f2} cannot write its /tmp while "
                                              f"{filler}'s is full")
        finally:
            try:
                self.nimbus.invoke(filler, {"action": "unlink", "paths": [path]}, timeout=30)
            except OSError:
                pass
            try:  # on the host's /tmp when instances share it
                os.unlink(path)
            except OSError:
                pass

    # --- memory -----------------------------------------------------------------------------

    def test_allocating_twice_the_memory_limit_is_runtime_out_of_memory(self):
        name = self.deploy_probe("hostile-mem", memory=128, timeout=30)
        r = self.nimbus.invoke(name, {"action": "alloc", "mib": 256}, timeout=60)
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled", repr(r))
        self.assertEqual(r.json().get("errorType"), "Runtime.OutOfMemory", repr(r))
        self.assertDaemonAnswers("after an instance ran out of memory")
        instance, _ = self.probe(name, {"action": "echo"})
        self.assertTrue(instance)


class KillTest(p.ProbeMixin, h.NimbusTestCase):
    """Its own daemon: where instances are not confined the function kills it."""

    def test_killing_the_daemon_or_another_instance_is_refused(self):
        attacker = self.deploy_probe("hostile-killer")
        victim = self.deploy_probe("hostile-victim")
        victim_instance, _ = self.probe(victim, {"action": "echo"})
        victim_pids = h.instance_pids(victim)
        self.assertTrue(victim_pids, "precondition: no process of the victim in /proc")
        daemon_pid = self.nimbus.proc.pid

        _, on_victim = self.probe(attacker, {"action": "kill", "pids": victim_pids})
        after = self.nimbus.invoke(victim, {"action": "echo"})
        after_instance = (after.json()["instance"] if after.status == 200
                          and not after.header("X-Amz-Function-Error") else repr(after))
        try:
            answer = self.nimbus.invoke(attacker, {"action": "kill", "pids": [daemon_pid]},
                                        timeout=15)
            on_daemon = answer.json()["result"] if answer.status == 200 else repr(answer)
        except (OSError, ValueError, KeyError, AssertionError) as e:
            on_daemon = f"no report: {e!r}"
        time.sleep(0.2)  # a SIGKILL lands at once; leave the kernel a moment to reap

        # Every finding at once: where the sandbox is missing, several of these fail together.
        ok_errnos = (errno.ESRCH, errno.EPERM)
        problems = []
        for pid, res in on_victim.items():
            if res.get("errno") not in ok_errnos:
                problems.append(f"killing the victim's host pid {pid} was not refused: {res}")
        if after_instance != victim_instance:
            problems.append(f"the victim's instance did not survive the attacker's kill: its "
                            f"next invoke answered {after_instance!r} (from instance "
                            f"{victim_instance!r} before)")
        if self.nimbus.proc.poll() is not None:
            problems.append(f"the function killed the daemon (pid {daemon_pid}): "
                            f"{self.daemon_state()}")
        res = on_daemon.get(str(daemon_pid)) if isinstance(on_daemon, dict) else on_daemon
        if not isinstance(res, dict) or res.get("errno") not in ok_errnos:
            problems.append(f"killing the daemon's pid {daemon_pid} was not refused: {res}")
        if problems:
            self.fail("\n".join(problems))
        self.assertDaemonAnswers("after the kill attempts")
        self.assertEqual(self.probe(victim, {"action": "echo"})[0], victim_instance)


# A `provided` runtime in sh that echoes each event, unless the event holds "bomb": then every
# process starts two more, 12 levels deep (8191 processes if nothing stops it), and each sleeps.
SH_BOMB_BOOTSTRAP = textwrap.dedent('''\
    #!/bin/sh
    API="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
    INSTANCE=$(cat /proc/sys/kernel/random/uuid)
    D=$(mktemp -d "/tmp/$AWS_LAMBDA_FUNCTION_NAME.XXXXXX") || exit 1
    B=$D/body H=$D/headers R=$D/response
    bomb() {
      if [ "$1" -gt 0 ]; then bomb $(($1 - 1)) & bomb $(($1 - 1)) & fi
      sleep 600
    }
    while true; do
      curl -sS -o "$B" -D "$H" "$API/invocation/next" || exit 1
      ID=$(grep -i '^lambda-runtime-aws-request-id:' "$H" | cut -d: -f2 | tr -d ' \\r')
      if grep -q '"bomb"' "$B"; then bomb 12; fi
      { printf '{"instance": "%s", "result": {"event": ' "$INSTANCE"; cat "$B"; echo '}}'; } >"$R"
      curl -sS -o /dev/null -X POST --data-binary "@$R" "$API/invocation/$ID/response" || exit 1
    done
    ''')


class ForkBombTest(p.ProbeMixin, h.NimbusTestCase):
    """Its own daemon, so a bomb that escapes its limits harms no other test."""

    def run_bomb(self, bomber, event):
        bystander = self.deploy_probe("hostile-bystander")
        bomb_instance, _ = self.probe(bomber, {"action": "echo"})
        self.probe(bystander, {"action": "echo"})  # warm

        answer = {}

        def bomb():
            try:
                answer["r"] = self.nimbus.invoke(bomber, event, timeout=40)
            except OSError as e:
                answer["r"] = e

        t = threading.Thread(target=bomb)
        started = time.monotonic()
        t.start()
        latencies, failures = [], []
        while t.is_alive() or time.monotonic() - started < 5:
            t0 = time.monotonic()
            try:
                r = self.nimbus.invoke(bystander, {"action": "echo", "n": len(latencies)},
                                       timeout=20)
                ok = r.status == 200 and r.header("X-Amz-Function-Error") is None
                if not ok:
                    failures.append(repr(r))
            except OSError as e:
                failures.append(repr(e))
            latencies.append(time.monotonic() - t0)
            time.sleep(0.1)
        t.join()
        r = answer["r"]
        sys.stderr.write(f"\nfork bomb: {r!r}; bystander: {len(latencies)} invokes, max "
                         f"{max(latencies) * 1000:.0f} ms, {len(failures)} failed\n")

        self.assertIsNone(self.nimbus.proc.poll(), f"during the bomb: {self.daemon_state()}")
        self.assertNotIsInstance(r, Exception, f"the bombed invoke got no answer: {r!r}")
        self.assertEqual(r.status, 200, repr(r))
        self.assertTrue(r.header("X-Amz-Function-Error"), f"the bomb did not fail: {r!r}")
        body = r.json()
        self.assertTrue(body.get("errorType") and body.get("errorMessage"), repr(r))
        self.assertEqual(failures, [], "the bystander failed during the bomb")
        self.assertGreaterEqual(len(latencies), 3)
        self.assertLess(max(latencies), 2.0, "the bystander answered slowly during the bomb: "
                                             f"{[round(x, 3) for x in latencies]}")
        gone = h.wait_until(lambda: not h.instance_pids(bomber), 10)
        self.assertTrue(gone, f"{len(h.instance_pids(bomber))} processes of the bombed function "
                              "are still alive 10 s after its invoke failed")
        after, _ = self.probe(bomber, {"action": "echo"})
        self.assertNotEqual(after, bomb_instance, "the bombed instance answered again")
        self.assertDaemonAnswers("after the bomb")

    def test_a_python_fork_bomb_is_contained_and_others_keep_answering(self):
        bomber = self.deploy_probe("hostile-pybomb", timeout=5)
        self.run_bomb(bomber, {"action": "bomb", "rounds": 11})

    def test_a_shell_fork_bomb_is_held_by_the_pids_limit_and_others_keep_answering(self):
        # Enough memory that the process limit, not the memory limit, is what stops it.
        bomber = h.unique_name("hostile-shbomb")
        files = {"function.yaml": h.manifest_text(bomber, "provided", "bootstrap", timeout=5,
                                                  memory=1024),
                 "bootstrap": SH_BOMB_BOOTSTRAP}
        self.nimbus.deploy_files(self.scratch, files)
        try:
            self.run_bomb(bomber, {"action": "bomb"})
        finally:  # the runtime's scratch, on the host's /tmp when instances share it
            for d in glob.glob(f"/tmp/{bomber}.*"):
                shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    h.main()
