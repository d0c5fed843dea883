#!/usr/bin/env python3
"""Every refused manifest and package: the CLI exits non-zero naming file:line, the admin API
answers 400/413 with the documented errorType and a message naming the problem, and a refusal
leaves no trace (nothing new listed, nothing new under the data directory's code/)."""

import io
import os
import re
import zipfile

import nimbus_harness as h

APP = "def handler(event, context):\n    return event\n"


def manifest(name):
    return f"name: {name}\nruntime: python3\nhandler: app.handler\n"


def tree(root):
    """Every path under root (relative), or an empty set when root does not exist yet."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, n), root))
    return out


class RefusalsTest(h.NimbusTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # One good function, so "nothing new" is checked against a non-empty state.
        cls.good = h.unique_name("good")
        cls.nimbus.deploy(h.write_function_dir(cls.scratch, h.function_files("python3", cls.good)))

    def setUp(self):
        self.names_before = [f["name"] for f in self.nimbus.functions()]
        self.data_before = tree(self.nimbus.data_dir)
        self.code_before = tree(os.path.join(self.nimbus.data_dir, "code"))
        self.assertTrue(self.code_before, "the data directory has no code/ after a deploy; "
                                          "the no-trace checks would be empty")

    def assertNoTrace(self, *names):
        self.assertEqual([f["name"] for f in self.nimbus.functions()], self.names_before)
        for n in names:
            r = self.nimbus.request("GET", f"/v1/functions/{n}")
            self.assertStatus(r, 404)
        self.assertEqual(tree(os.path.join(self.nimbus.data_dir, "code")), self.code_before)
        new = tree(self.nimbus.data_dir) - self.data_before
        # SQLite may create its journal files at any time; anything else is a leftover.
        leftovers = [p for p in new if not re.search(r"(-wal|-shm|-journal)$", p)]
        self.assertEqual(leftovers, [], "a refused deploy left files in the data directory")

    # --- manifests through the CLI ------------------------------------------------------------

    def check_cli_refuses(self, name, yaml_text, line, words):
        d = h.write_function_dir(self.scratch, {"function.yaml": yaml_text, "app.py": APP})
        p = self.nimbus.deploy(d, check=False)
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0, f"deploy of a bad manifest succeeded: {out}")
        self.assertRegex(out, rf"function\.yaml:{line}\b",
                         f"the error should point at function.yaml line {line}")
        for w in words:
            self.assertIn(w, out)
        self.assertNoTrace(name)
        return out

    def test_cli_deploy_refuses_an_unknown_key_naming_file_and_line(self):
        name = h.unique_name("bad-key")
        self.check_cli_refuses(name, manifest(name) + "memroy: 256\n", 4, ["memroy"])

    def test_cli_deploy_refuses_a_bad_memory_value_naming_file_and_line(self):
        name = h.unique_name("bad-memory")
        self.check_cli_refuses(name, manifest(name) + "memory: lots\n", 4, ["memory", "lots"])

    def test_cli_deploy_refuses_a_memory_value_out_of_range(self):
        name = h.unique_name("big-memory")
        self.check_cli_refuses(name, manifest(name) + "timeout: 5\nmemory: 999999\n", 5,
                               ["memory", "999999"])

    def test_cli_deploy_refuses_an_unknown_runtime_naming_file_and_line(self):
        name = h.unique_name("bad-runtime")
        text = f"name: {name}\nruntime: cobol\nhandler: app.handler\n"
        self.check_cli_refuses(name, text, 2, ["cobol", "python3"])

    def test_cli_deploy_refuses_a_python_function_without_a_handler(self):
        name = h.unique_name("no-handler")
        text = f"name: {name}\nruntime: python3\nmemory: 128\n"
        d = h.write_function_dir(self.scratch, {"function.yaml": text, "app.py": APP})
        p = self.nimbus.deploy(d, check=False)
        out = p.stdout + p.stderr
        self.assertNotEqual(p.returncode, 0, out)
        self.assertRegex(out, r"function\.yaml:\d+")
        self.assertIn("handler", out)
        self.assertNoTrace(name)

    # --- manifests through the admin API ------------------------------------------------------

    def test_the_admin_api_refuses_a_bad_manifest_with_its_line(self):
        name = h.unique_name("api-bad-key")
        data = h.zip_bytes({"function.yaml": manifest(name) + "colour: blue\n", "app.py": APP})
        r = self.nimbus.put_zip(name, data)
        self.assertStatus(r, 400)
        self.assertEqual(r.header("x-amzn-ErrorType"), "InvalidParameterValueException")
        body = r.json()
        self.assertEqual(body["errorType"], "InvalidParameterValueException")
        self.assertRegex(body["message"], r"function\.yaml:4\b")
        self.assertIn("colour", body["message"])
        self.assertNoTrace(name)

    def test_the_admin_api_refuses_a_name_that_differs_from_the_manifest(self):
        url_name, manifest_name = h.unique_name("url-name"), h.unique_name("yaml-name")
        data = h.zip_bytes({"function.yaml": manifest(manifest_name), "app.py": APP})
        r = self.nimbus.put_zip(url_name, data)
        self.assertStatus(r, 400)
        self.assertEqual(r.json()["errorType"], "InvalidParameterValueException")
        self.assertIn(url_name, r.json()["message"])
        self.assertIn(manifest_name, r.json()["message"])
        self.assertNoTrace(url_name, manifest_name)

    def test_a_route_taken_by_another_function_is_refused_naming_its_owner(self):
        # The newcomer sorts before the owner, so a rebuild in name order would blame itself.
        owner, newcomer = h.unique_name("zz-owner"), h.unique_name("aa-newcomer")
        path = f"/taken-{owner}"
        routes = f"http:\n  - {{method: GET, path: {path}}}\n"
        r = self.nimbus.put_zip(owner, h.zip_bytes({"function.yaml": manifest(owner) + routes, "app.py": APP}))
        self.assertIn(r.status, (200, 201), f"unexpected answer: {r!r}")
        r = self.nimbus.put_zip(newcomer, h.zip_bytes({"function.yaml": manifest(newcomer) + routes,
                                                      "app.py": APP}))
        self.assertStatus(r, 409)
        self.assertEqual(r.json()["errorType"], "ResourceConflictException")
        self.assertIn(f"already belongs to function '{owner}'", r.json()["message"])
        self.assertStatus(self.nimbus.request("DELETE", f"/v1/functions/{owner}"), 204)
        self.assertNoTrace(newcomer, owner)

    # --- packages -------------------------------------------------------------------------

    def check_package_refused(self, name, data, status, error_type, words):
        r = self.nimbus.put_zip(name, data)
        self.assertEqual(r.status, status, f"unexpected answer: {r!r}")
        self.assertEqual(r.header("x-amzn-ErrorType"), error_type)
        body = r.json()
        self.assertEqual(body["errorType"], error_type)
        for w in words:
            self.assertIn(w, body["message"])
        self.assertNoTrace(name)

    def raw_zip(self, name, entries):
        """entries: (ZipInfo-ready name, data, mode) with no sanitising by zipfile."""
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(self.info("function.yaml", 0o100644), manifest(name))
            zf.writestr(self.info("app.py", 0o100644), APP)
            for entry, data, mode in entries:
                zf.writestr(self.info(entry, mode), data)
        return buf.getvalue()

    @staticmethod
    def info(name, mode):
        i = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        i.create_system = 3
        i.external_attr = mode << 16
        i.compress_type = zipfile.ZIP_DEFLATED
        return i

    def test_a_package_with_path_traversal_is_refused_as_invalid(self):
        name = h.unique_name("traversal")
        data = self.raw_zip(name, [("../escaped-traversal.txt", "x", 0o100644)])
        self.check_package_refused(name, data, 400, "InvalidPackageException",
                                   ["escaped-traversal.txt"])
        self.assertFalse(os.path.exists(os.path.join(self.nimbus.data_dir,
                                                     "escaped-traversal.txt")))

    def test_a_package_with_an_absolute_path_is_refused_as_invalid(self):
        name = h.unique_name("absolute")
        target = os.path.join(self.nimbus.workdir, "escaped-absolute.txt")
        data = self.raw_zip(name, [(target, "x", 0o100644)])
        self.check_package_refused(name, data, 400, "InvalidPackageException",
                                   ["escaped-absolute.txt"])
        self.assertFalse(os.path.exists(target))

    def test_a_package_with_a_symlink_escaping_it_is_refused_as_invalid(self):
        name = h.unique_name("symlink")
        data = self.raw_zip(name, [("escape-link", "../../../../../../etc", 0o120777),
                                   ("escape-link/written-through.txt", "x", 0o100644)])
        self.check_package_refused(name, data, 400, "InvalidPackageException", ["escape-link"])
        self.assertFalse(os.path.exists("/etc/written-through.txt"))

    def test_a_body_that_is_not_a_zip_is_refused_as_invalid(self):
        name = h.unique_name("not-zip")
        self.check_package_refused(name, b"this is plain text, not a zip archive\n" * 10, 400,
                                   "InvalidPackageException", ["zip"])

    def test_a_package_without_function_yaml_is_refused_as_invalid(self):
        name = h.unique_name("no-manifest")
        data = h.zip_bytes({"app.py": APP, "README": "no manifest here"})
        self.check_package_refused(name, data, 400, "InvalidPackageException",
                                   ["function.yaml"])

    def test_a_package_over_50_mb_zipped_is_refused_as_too_large(self):
        name = h.unique_name("too-big")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("function.yaml", manifest(name))
            zf.writestr("app.py", APP)
            zf.writestr("noise.bin", os.urandom(51 * 1024 * 1024))
        data = buf.getvalue()
        self.assertGreater(len(data), 50 * 1024 * 1024)
        self.check_package_refused(name, data, 413, "CodeStorageExceededException", ["50"])

    def test_a_zip_bomb_over_250_mb_unzipped_is_refused_as_too_large(self):
        name = h.unique_name("bomb")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            zf.writestr("function.yaml", manifest(name))
            zf.writestr("app.py", APP)
            chunk = bytes(1024 * 1024)
            with zf.open("zeros.bin", "w") as f:
                for _ in range(260):
                    f.write(chunk)
        data = buf.getvalue()
        self.assertLess(len(data), 2 * 1024 * 1024)
        self.check_package_refused(name, data, 413, "CodeStorageExceededException", ["250"])

    def test_a_bad_function_name_in_the_url_is_refused(self):
        r = self.nimbus.put_zip("bad name!", h.zip_bytes({"function.yaml": manifest("x"),
                                                          "app.py": APP}))
        self.assertStatus(r, 400)
        self.assertEqual(r.json()["errorType"], "InvalidParameterValueException")
        self.assertNoTrace()


if __name__ == "__main__":
    h.main()
