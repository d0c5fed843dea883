#!/usr/bin/env python3
"""The admin API's token: every /v1 call without `Authorization: Bearer TOKEN` (or with a wrong
one) is refused with 401 UnauthorizedException and a message saying where the token is; the
token file is private to the daemon's user; /metrics, the Invoke API and the HTTP trigger stay
open; the CLI on the daemon's machine finds the token by itself (through the endpoint
registration under $HOME, or ./.nimbus/admin.token), and a wrong --token exits 1 with the
daemon's message. A restarted daemon keeps its token and refuses a token file others can read.
"""

import json
import os
import re
import shutil
import stat
import tempfile
import unittest

import nimbus_harness as h


class AdminAuthTest(h.NimbusTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.name = h.unique_name("auth")
        cls.nimbus.deploy_files(cls.scratch, h.function_files("python3", cls.name,
                                                              routes=[("GET", f"/{cls.name}")]))

    def assertRefused(self, r, wrong=False):
        self.assertStatus(r, 401)
        doc = r.json()
        self.assertEqual(doc.get("errorType"), "UnauthorizedException", repr(r))
        self.assertEqual(doc.get("Type"), "User", repr(r))
        self.assertEqual(r.header("x-amzn-ErrorType"), "UnauthorizedException")
        message = doc.get("message", "")
        for part in ("DATA/admin.token", "'Authorization: Bearer TOKEN'", "CLI", "--token",
                     "NIMBUS_TOKEN"):
            self.assertIn(part, message)
        if wrong:
            self.assertIn("wrong", message)
        self.assertTrue((r.header("WWW-Authenticate") or "").startswith("Bearer"), repr(r))
        self.assertNotIn(self.nimbus.token, r.text(), "a refusal must not reveal the token")

    def fn_path(self, name=None):
        return f"/v1/functions/{name or self.name}"

    # --- refused without the token -------------------------------------------------------

    def test_listing_without_a_token_is_refused_with_where_the_token_is(self):
        r = self.nimbus.request("GET", "/v1/functions", auth=False)
        self.assertRefused(r)
        self.assertNotIn(self.name, r.text())

    def test_reading_one_function_without_a_token_is_refused(self):
        self.assertRefused(self.nimbus.request("GET", self.fn_path(), auth=False))
        self.assertRefused(self.nimbus.request("GET", self.fn_path() + "/logs", auth=False))

    def test_deploying_without_a_token_is_refused_and_deploys_nothing(self):
        name = h.unique_name("auth-sneak")
        data = h.zip_bytes(h.function_files("python3", name))
        self.assertRefused(self.nimbus.put_zip(name, data, auth=False))
        self.assertStatus(self.nimbus.request("GET", self.fn_path(name)), 404)

    def test_deleting_without_a_token_is_refused_and_the_function_stays(self):
        self.assertRefused(self.nimbus.request("DELETE", self.fn_path(), auth=False))
        self.assertRefused(self.nimbus.request("PUT", self.fn_path() + "/aliases/live",
                                               b'{"version": "1"}', auth=False))
        self.assertStatus(self.nimbus.request("GET", self.fn_path()), 200)

    def test_an_unknown_admin_call_without_a_token_is_refused_not_answered_404(self):
        self.assertRefused(self.nimbus.request("GET", "/v1/nothing-here", auth=False))
        self.assertRefused(self.nimbus.request("GET", "/v1", auth=False))

    # --- wrong tokens --------------------------------------------------------------------

    def test_a_wrong_token_is_refused_for_reads_deploys_and_deletes(self):
        wrong = {"Authorization": "Bearer " + "0" * len(self.nimbus.token)}
        self.assertRefused(self.nimbus.request("GET", "/v1/functions", headers=wrong), wrong=True)
        name = h.unique_name("auth-wrong")
        r = h.http_request_streaming_body(
            self.nimbus.port, "PUT", self.fn_path(name),
            h.zip_bytes(h.function_files("python3", name)),
            {"Content-Type": "application/zip", **wrong})
        self.assertRefused(r, wrong=True)
        self.assertRefused(self.nimbus.request("DELETE", self.fn_path(), headers=wrong),
                           wrong=True)
        self.assertStatus(self.nimbus.request("GET", self.fn_path()), 200)
        self.assertStatus(self.nimbus.request("GET", self.fn_path(name)), 404)

    def test_a_prefix_or_an_extension_of_the_token_is_wrong(self):
        token = self.nimbus.token
        for presented in (token[:-1], token + "0", token[:32]):
            self.assertRefused(self.nimbus.request(
                "GET", "/v1/functions", headers={"Authorization": f"Bearer {presented}"}),
                wrong=True)

    def test_the_token_in_another_scheme_is_refused(self):
        for value in (f"Basic {self.nimbus.token}", self.nimbus.token, "Bearer"):
            self.assertRefused(self.nimbus.request("GET", "/v1/functions",
                                                   headers={"Authorization": value}))

    # --- the right token -----------------------------------------------------------------

    def test_the_right_token_opens_every_call(self):
        names = [f["name"] for f in self.nimbus.functions()]
        self.assertIn(self.name, names)
        self.assertEqual(self.nimbus.function(self.name)["name"], self.name)
        lower = self.nimbus.request("GET", "/v1/functions",
                                    headers={"Authorization": f"bearer {self.nimbus.token}"})
        self.assertStatus(lower, 200)
        name = h.unique_name("auth-ok")
        r = self.nimbus.put_zip(name, h.zip_bytes(h.function_files("python3", name)))
        self.assertStatus(r, 201)
        self.assertStatus(self.nimbus.request("DELETE", self.fn_path(name)), 204)

    def test_the_token_file_is_private_to_the_daemons_user(self):
        st = os.stat(self.nimbus.token_file)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertEqual(st.st_uid, os.geteuid())
        with open(self.nimbus.token_file) as f:
            self.assertRegex(f.read(), r"\A[0-9a-f]{64}\n\Z")

    def test_the_daemon_registers_its_endpoint_for_the_cli(self):
        reg_dir = os.path.join(self.nimbus.home, ".config", "nimbus", "endpoints")
        reg = os.path.join(reg_dir, f"127.0.0.1_{self.nimbus.port}")
        with open(reg) as f:
            self.assertEqual(f.read(), os.path.abspath(self.nimbus.token_file) + "\n")
        self.assertEqual(stat.S_IMODE(os.stat(reg).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(reg_dir).st_mode), 0o700)

    # --- what stays open -----------------------------------------------------------------

    def test_metrics_need_no_token(self):
        r = self.nimbus.request("GET", "/metrics")
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("WWW-Authenticate"))

    def test_the_invoke_api_and_the_http_trigger_need_no_admin_token(self):
        r = self.nimbus.invoke(self.name, {"hello": "auth"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["event"], {"hello": "auth"})
        self.assertStatus(self.nimbus.request("GET", f"/fn/{self.name}"), 200)
        self.assertStatus(self.nimbus.request("GET", f"/{self.name}"), 200)

    # --- the CLI ---------------------------------------------------------------------------

    def test_the_cli_with_no_flags_finds_the_token_through_the_registration(self):
        cwd = tempfile.mkdtemp(prefix="nimbus-it-cwd-")
        try:
            p = self.nimbus.cli("ls", token_env=False, endpoint_flag=False, cwd=cwd)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(self.name, p.stdout)
            p = self.nimbus.cli("info", self.name, token_env=False, endpoint_flag=False, cwd=cwd)
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)

    def test_the_cli_falls_back_to_the_token_in_dot_nimbus_here(self):
        cwd = tempfile.mkdtemp(prefix="nimbus-it-cwd-")
        home = tempfile.mkdtemp(prefix="nimbus-it-home-")  # nothing registered there
        try:
            os.symlink(self.nimbus.data_dir, os.path.join(cwd, ".nimbus"))
            p = self.nimbus.cli("ls", token_env=False, home=home, cwd=cwd)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(self.name, p.stdout)
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)

    def test_the_cli_without_any_token_exits_1_and_says_where_it_looked(self):
        cwd = tempfile.mkdtemp(prefix="nimbus-it-cwd-")
        home = tempfile.mkdtemp(prefix="nimbus-it-home-")
        try:
            p = self.nimbus.cli("ls", token_env=False, home=home, cwd=cwd)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("(UnauthorizedException)", p.stderr)
            self.assertIn("note: no token was sent", p.stderr)
            self.assertEqual(p.stdout, "")
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)

    def test_a_wrong_token_flag_exits_1_with_the_daemons_message(self):
        # NIMBUS_TOKEN holds the right token: the flag wins.
        p = self.nimbus.cli("rm", self.name, "--token", "wrong")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("the admin API token in the request is wrong", p.stderr)
        self.assertIn("DATA/admin.token", p.stderr)
        self.assertIn("(UnauthorizedException)", p.stderr)
        self.assertIn("note: the token sent came from --token", p.stderr)
        self.assertStatus(self.nimbus.request("GET", self.fn_path()), 200)

    def test_the_cli_invokes_without_an_admin_token(self):
        cwd = tempfile.mkdtemp(prefix="nimbus-it-cwd-")
        home = tempfile.mkdtemp(prefix="nimbus-it-home-")
        try:
            p = self.nimbus.cli("invoke", self.name, "--payload", '{"via": "cli"}',
                                token_env=False, home=home, cwd=cwd)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout)["event"], {"via": "cli"})
        finally:
            shutil.rmtree(cwd, ignore_errors=True)
            shutil.rmtree(home, ignore_errors=True)


class TokenAcrossRestartsTest(unittest.TestCase):
    """A daemon of its own, started more than once on the same data directory."""

    def setUp(self):
        self.nimbus = h.Daemon()

    def tearDown(self):
        self.nimbus.stop()
        self.nimbus.cleanup()

    def test_a_restart_keeps_the_token_and_a_token_file_others_can_read_is_refused(self):
        first = self.nimbus.start().token
        self.assertRegex(first, r"\A[0-9a-f]{64}\Z")
        self.nimbus.stop()
        second = self.nimbus.start().token
        self.assertEqual(first, second)
        self.nimbus.stop()

        os.chmod(self.nimbus.token_file, 0o644)
        with self.assertRaises(RuntimeError) as refused:
            self.nimbus.start()
        message = str(refused.exception)
        self.assertIn(f"run `chmod 600 {os.path.abspath(self.nimbus.token_file)}`", message)
        self.assertIsNotNone(re.search(r"exited with 1 during start", message), message)
        self.assertEqual(stat.S_IMODE(os.stat(self.nimbus.token_file).st_mode), 0o644,
                         "nimbus leaves the mode for the operator to fix")

        os.chmod(self.nimbus.token_file, 0o600)
        self.assertEqual(self.nimbus.start().token, first)


if __name__ == "__main__":
    h.main()
