#!/usr/bin/env python3
"""What callers get when a handler throws or its process dies mid-request: API Gateway's 502
through the HTTP trigger, Lambda's error document through the Invoke API, and a fresh instance
for the next request after a crash."""

import nimbus_harness as h


class FunctionErrorsTest(h.NimbusTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.names = {}
        for runtime in ("python3", "nodejs"):
            name = h.unique_name(f"errors-{runtime}")
            cls.nimbus.deploy(h.write_function_dir(cls.scratch, h.function_files(runtime, name)))
            cls.names[runtime] = name

    # --- handler exceptions -----------------------------------------------------------------

    def check_exception_through_trigger(self, runtime):
        r = self.nimbus.request("GET", f"/fn/{self.names[runtime]}/raise")
        self.assertStatus(r, 502)
        self.assertEqual(r.json(), {"message": "Internal Server Error"})
        self.assertTrue(r.header("x-amzn-ErrorType"), "x-amzn-ErrorType missing on a 502")
        self.assertTrue(r.header("apigw-requestid"), "apigw-requestid missing on a 502")

    def check_exception_through_invoke(self, runtime, error_type, message):
        r = self.nimbus.invoke(self.names[runtime], {"action": "raise"})
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled")
        body = r.json()
        self.assertEqual(body["errorType"], error_type)
        self.assertEqual(body["errorMessage"], message)
        # Passed through as the runtime reported it: Python says stackTrace, Node.js trace.
        self.assertIsInstance(body.get("stackTrace", body.get("trace")), list)

    def test_a_python_exception_answers_502_internal_server_error_through_the_trigger(self):
        self.check_exception_through_trigger("python3")

    def test_a_nodejs_exception_answers_502_internal_server_error_through_the_trigger(self):
        self.check_exception_through_trigger("nodejs")

    def test_a_python_exception_is_an_unhandled_function_error_through_invoke(self):
        self.check_exception_through_invoke("python3", "ValueError", "boom from python")

    def test_a_nodejs_exception_is_an_unhandled_function_error_through_invoke(self):
        self.check_exception_through_invoke("nodejs", "TypeError", "boom from node")

    def test_nimbus_invoke_prints_the_error_document_and_exits_4_on_a_function_error(self):
        p = self.nimbus.cli("invoke", self.names["python3"], "--payload", '{"action": "raise"}')
        self.assertEqual(p.returncode, 4, f"{p.stdout}{p.stderr}")
        self.assertIn("boom from python", p.stdout + p.stderr)
        self.assertIn("ValueError", p.stdout + p.stderr)

    def test_an_instance_keeps_serving_after_its_handler_threw(self):
        name = self.names["python3"]
        before = self.nimbus.invoke(name, {"action": "echo"}).json()["instance"]
        self.nimbus.invoke(name, {"action": "raise"})
        after = self.nimbus.invoke(name, {"action": "echo"})
        self.assertStatus(after, 200)
        self.assertEqual(after.json()["instance"], before,
                         "a handler exception must not cost the instance")

    # --- crashes ---------------------------------------------------------------------------

    def check_crash(self, runtime, through):
        # Its own function, so the only instance in /proc is the one that is about to crash.
        name, _ = self.deploy_fixture(runtime, f"crash-{runtime}")
        first = self.nimbus.invoke(name, {"action": "echo"})
        self.assertStatus(first, 200)
        old_instance = first.json()["instance"]
        old_pids = h.instance_pids(name)
        self.assertTrue(old_pids, "no instance process of the function was found in /proc")

        if through == "trigger":
            r = self.nimbus.request("GET", f"/fn/{name}/exit")
            self.assertStatus(r, 502)
            self.assertEqual(r.json(), {"message": "Internal Server Error"})
        else:
            r = self.nimbus.invoke(name, {"action": "exit"})
            self.assertStatus(r, 200)
            self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled")
            self.assertEqual(r.json()["errorType"], "Runtime.ExitError")
            self.assertTrue(r.json().get("errorMessage"), "Runtime.ExitError without a message")

        gone = h.wait_until(lambda: not any(h.pid_exists(p) for p in old_pids), 2.0)
        self.assertTrue(gone, f"crashed instance processes still exist: "
                              f"{[p for p in old_pids if h.pid_exists(p)]}")

        nxt = self.nimbus.invoke(name, {"action": "echo"})
        self.assertStatus(nxt, 200)
        self.assertIsNone(nxt.header("X-Amz-Function-Error"))
        self.assertNotEqual(nxt.json()["instance"], old_instance,
                            "the request after a crash must run on a new instance")
        new_pids = h.instance_pids(name)
        self.assertTrue(new_pids)
        self.assertFalse(set(new_pids) & set(old_pids))

    def test_a_python_crash_answers_502_and_the_next_request_runs_on_a_new_instance(self):
        self.check_crash("python3", "trigger")

    def test_a_python_crash_is_runtime_exit_error_through_invoke_and_is_replaced(self):
        self.check_crash("python3", "invoke")

    def test_a_nodejs_crash_answers_502_and_the_next_request_runs_on_a_new_instance(self):
        self.check_crash("nodejs", "trigger")

    def test_a_nodejs_crash_is_runtime_exit_error_through_invoke_and_is_replaced(self):
        self.check_crash("nodejs", "invoke")


if __name__ == "__main__":
    h.main()
