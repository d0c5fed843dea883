#!/usr/bin/env python3
"""AWS's own Node.js runtime interface client (npm `aws-lambda-ric`) runs plain Lambda handlers
under `runtime: provided` unchanged: results, handler errors and the context object all come
through nimbus's Runtime API the way they come through Lambda's.

The package compiles a native addon on install (about a minute and a half here), so the
installed node_modules is cached outside the repository, in NIMBUS_TEST_CACHE (default
/var/cache/nimbus-test), under a lock and behind a completion marker, so parallel or repeated
runs install it once. A function gets only what the client needs at run time: its package.json,
bin/ and dist/ (the JavaScript and the compiled rapid-client.node, under 1 MB). The rest of the
install (node-gyp and friends, and about 150 MB of curl and aws-lambda-cpp sources the package
leaves in deps/) is build-time only; the full tree would still fit Lambda's 250 MB limit, but
every deploy would then ship 160 MB for nothing.
"""

import os
import shutil
import textwrap

import nimbus_harness as h

RIC_VERSION = "3.3.0"
NEEDED = ("package.json", "bin", "dist")
UNZIPPED_LIMIT = 250 * 1024 * 1024


def ensure_ric_installed():
    """Returns the cached node_modules/aws-lambda-ric, installing it once if needed."""
    def check(stage, p):
        addon = os.path.join(stage, "node_modules", "aws-lambda-ric", "dist", "rapid-client.node")
        if not os.path.exists(addon):
            raise RuntimeError(f"npm installed aws-lambda-ric without building {addon}; "
                               "its install scripts need autoconf, automake, libtool, "
                               f"cmake and a C++ compiler\n{p.stderr[-5000:]}")
    root = h.npm_cached("aws-lambda-ric", RIC_VERSION, check)
    return os.path.join(root, "node_modules", "aws-lambda-ric")


def tree_size(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


HANDLERS = textwrap.dedent('''\
    exports.handler = async (event) => ({ ok: true, got: event });

    exports.fail = async () => {
      throw new Error("ric boom");
    };

    exports.context = async (event, context) => ({
      requestId: context.awsRequestId,
      functionName: context.functionName,
      functionVersion: context.functionVersion,
      memoryLimitInMB: context.memoryLimitInMB,
      invokedFunctionArn: context.invokedFunctionArn,
      remainingMs: context.getRemainingTimeInMillis(),
    });
    ''')

# The package's bin/index.mjs is what `npx aws-lambda-ric HANDLER` runs; it is started
# directly since the pruned node_modules carries no .bin/ links. _HANDLER names the export,
# as in any Lambda custom runtime.
BOOTSTRAP = '#!/bin/sh\nexec node node_modules/aws-lambda-ric/bin/index.mjs "$_HANDLER"\n'


class AwsRicTest(h.NimbusTestCase):

    @classmethod
    def setUpClass(cls):
        cls.ric = ensure_ric_installed()
        super().setUpClass()
        cls.names = {}
        for export in ("handler", "fail", "context"):
            name = h.unique_name(f"ric-{export}")
            d = h.write_function_dir(cls.scratch, {
                "function.yaml": h.manifest_text(name, "provided", f"index.{export}",
                                                 memory=256, timeout=5),
                "index.js": HANDLERS, "bootstrap": BOOTSTRAP}, executable=("bootstrap",))
            dest = os.path.join(d, "node_modules", "aws-lambda-ric")
            os.makedirs(dest)
            for item in NEEDED:
                src = os.path.join(cls.ric, item)
                if os.path.isdir(src):
                    shutil.copytree(src, os.path.join(dest, item))
                else:
                    shutil.copy2(src, os.path.join(dest, item))
            cls.fn_dir_size = tree_size(d)
            cls.nimbus.deploy(d)
            cls.names[export] = name

    def test_the_packaged_function_is_far_under_lambdas_unzipped_limit(self):
        self.assertLess(self.fn_dir_size, UNZIPPED_LIMIT)
        self.assertTrue(os.path.exists(os.path.join(self.ric, "dist", "rapid-client.node")))

    def test_a_plain_lambda_handler_under_aws_lambda_ric_answers_the_invoke_api(self):
        payload = {"hello": "ric", "list": [1, 2, 3]}
        r = self.nimbus.invoke(self.names["handler"], payload)
        self.assertStatus(r, 200)
        self.assertIsNone(r.header("X-Amz-Function-Error"))
        self.assertEqual(r.json(), {"ok": True, "got": payload})

    def test_a_plain_lambda_handler_under_aws_lambda_ric_answers_http(self):
        name = self.names["handler"]
        r = self.nimbus.request("GET", f"/fn/{name}/via/http?q=1")
        self.assertStatus(r, 200)
        body = r.json()
        self.assertTrue(body["ok"])
        self.assertEqual(body["got"]["rawPath"], f"/fn/{name}/via/http")
        self.assertEqual(body["got"]["queryStringParameters"], {"q": "1"})

    def test_a_handler_error_reported_by_aws_lambda_ric_reaches_the_caller(self):
        r = self.nimbus.invoke(self.names["fail"], {})
        self.assertStatus(r, 200)
        self.assertEqual(r.header("X-Amz-Function-Error"), "Unhandled")
        body = r.json()
        self.assertEqual(body["errorType"], "Error")
        self.assertEqual(body["errorMessage"], "ric boom")
        # The instance survives a handler error: the next call still answers.
        again = self.nimbus.invoke(self.names["fail"], {})
        self.assertEqual(again.json()["errorMessage"], "ric boom")

    def test_aws_lambda_ric_builds_the_context_from_nimbus_runtime_api_headers(self):
        name = self.names["context"]
        r = self.nimbus.invoke(name, {})
        self.assertStatus(r, 200)
        ctx = r.json()
        self.assertEqual(ctx["requestId"], r.header("x-amzn-RequestId"))
        self.assertEqual(ctx["functionName"], name)
        self.assertEqual(str(ctx["memoryLimitInMB"]), "256")
        self.assertEqual(ctx["invokedFunctionArn"],
                         f"arn:aws:lambda:local:000000000000:function:{name}")
        self.assertGreater(ctx["remainingMs"], 0)
        self.assertLessEqual(ctx["remainingMs"], 5000)


if __name__ == "__main__":
    h.main()
