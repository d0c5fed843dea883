#!/usr/bin/env python3
"""A `provided` function in C++ on nimbus's SDK (sdk/cpp, header nimbus/lambda_runtime.hpp),
built by the manifest's `build: make` when `nimbus deploy` packages it, answers the Invoke API
and the HTTP trigger."""

import os
import textwrap

import nimbus_harness as h

SDK = os.path.join(h.source_dir(), "sdk", "cpp")

MAIN_CC = textwrap.dedent(r'''
    // Echoes its event back: through the HTTP trigger the event comes back as a bare JSON body.
    #include <string>

    #include <nimbus/lambda_runtime.hpp>

    int main() {
      nimbus::lambda::run([](const std::string& event, const nimbus::lambda::Context& ctx) {
        (void)ctx;
        if (event.find("\"fail\"") != std::string::npos) {
          return nimbus::lambda::Response::failure("cpp boom", "CppError");
        }
        return nimbus::lambda::Response::success(event);
      });
      return 0;
    }
    ''').lstrip("\n")


def makefile():
    # Any .cc files the SDK carries beside its headers are compiled in; a header-only SDK
    # simply has none.
    return textwrap.dedent(f'''\
        SDK := {SDK}
        SDK_SOURCES := $(wildcard $(SDK)/nimbus/*.cc $(SDK)/src/*.cc)

        bootstrap: main.cc
        \tg++ -std=c++20 -O2 -I$(SDK) -I$(SDK)/include -o bootstrap main.cc $(SDK_SOURCES) -pthread
        ''')


class CppSdkTest(h.NimbusTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.name = h.unique_name("cpp-echo")
        manifest = h.manifest_text(cls.name, "provided", "bootstrap",
                                   routes=[("GET", "/cpp/{thing}")]) + "build: make\n"
        cls.fn_dir = h.write_function_dir(cls.scratch, {
            "function.yaml": manifest, "main.cc": MAIN_CC, "Makefile": makefile()})
        cls.deploy_result = cls.nimbus.deploy(cls.fn_dir, check=False)

    def setUp(self):
        self.assertTrue(os.path.isfile(os.path.join(SDK, "nimbus", "lambda_runtime.hpp")),
                        f"the C++ SDK header {SDK}/nimbus/lambda_runtime.hpp is missing")
        p = self.deploy_result
        self.assertEqual(p.returncode, 0, f"deploy with `build: make` failed:\n{p.stdout}"
                                          f"\n{p.stderr}")

    def test_deploy_runs_the_build_command_and_ships_the_built_bootstrap(self):
        self.assertTrue(os.access(os.path.join(self.fn_dir, "bootstrap"), os.X_OK))
        self.assertEqual(self.nimbus.function(self.name)["runtime"], "provided")

    def test_a_cpp_function_answers_the_invoke_api(self):
        payload = {"hello": "c++", "n": 42}
        r = self.nimbus.invoke(self.name, payload)
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Amz-Function-Error"))
        self.assertEqual(r.json(), payload)

    def test_a_cpp_failure_response_is_an_unhandled_function_error(self):
        r = self.nimbus.invoke(self.name, {"action": "fail"})
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled")
        self.assertEqual(r.json()["errorType"], "CppError")
        self.assertEqual(r.json()["errorMessage"], "cpp boom")

    def test_a_cpp_function_answers_its_http_route(self):
        r = self.nimbus.request("GET", "/cpp/widget?size=3")
        self.assertStatus(r, 200)
        event = r.json()
        self.assertEqual(event["pathParameters"], {"thing": "widget"})
        self.assertEqual(event["routeKey"], "GET /cpp/{thing}")
        self.assertEqual(event["queryStringParameters"], {"size": "3"})


if __name__ == "__main__":
    h.main()
