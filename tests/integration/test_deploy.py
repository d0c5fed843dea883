#!/usr/bin/env python3
"""Deploying with the real CLI: what it prints, what the admin API then lists, and when a
deploy publishes a new version (changed code) or none (byte-identical code)."""

import os
import re

import nimbus_harness as h


class DeployTest(h.NimbusTestCase):

    def test_deploy_prints_the_function_and_its_version_and_exits_zero(self):
        name = h.unique_name("deploy-first")
        d = h.write_function_dir(self.scratch, h.function_files("python3", name))
        p = self.nimbus.deploy(d, check=False)
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, f"deploy failed: {out}")
        self.assertIn(name, out)
        self.assertRegex(out, r"(?i)(version\W*1\b|\bv1\b|:1\b)",
                         "deploy output should name the published version 1")

    def test_a_deployed_function_is_listed_with_its_manifest_values(self):
        name = h.unique_name("deploy-listed")
        d = h.write_function_dir(self.scratch, h.function_files(
            "python3", name, memory=256, timeout=7, keep_alive=30, concurrency_max=4,
            routes=[("GET", "/listed/{id}")]))
        self.nimbus.deploy(d)
        docs = {f["name"]: f for f in self.nimbus.functions()}
        self.assertIn(name, docs)
        doc = docs[name]
        self.assertEqual(doc["runtime"], "python3")
        self.assertEqual(doc["handler"], "app.handler")
        self.assertEqual(doc["memory"], 256)
        self.assertEqual(doc["timeout"], 7)
        self.assertEqual(doc["keep_alive"], 30)
        self.assertEqual(doc["concurrency"]["max"], 4)
        self.assertEqual(doc["version"], "1")
        self.assertEqual(doc["routes"], [{"method": "GET", "path": "/listed/{id}"}])
        self.assertRegex(doc["code_sha256"], r"^[0-9a-f]{64}$")
        self.assertGreater(doc["code_size"], 0)

    def test_the_function_list_is_sorted_by_name(self):
        for base in ("zz-sorted", "aa-sorted"):
            self.nimbus.deploy(h.write_function_dir(
                self.scratch, h.function_files("python3", h.unique_name(base))))
        names = [f["name"] for f in self.nimbus.functions()]
        self.assertEqual(names, sorted(names))

    def test_redeploying_identical_code_keeps_the_version(self):
        name = h.unique_name("deploy-same")
        d = h.write_function_dir(self.scratch, h.function_files("python3", name))
        self.nimbus.deploy(d)
        first = self.nimbus.function(name)
        p = self.nimbus.deploy(d)
        self.assertEqual(p.returncode, 0)
        second = self.nimbus.function(name)
        self.assertEqual(second["version"], "1")
        self.assertEqual(second["versions"], ["1"])
        self.assertEqual(second["code_sha256"], first["code_sha256"])

    def test_redeploying_changed_code_publishes_the_next_version(self):
        name = h.unique_name("deploy-changed")
        d = h.write_function_dir(self.scratch, h.function_files("python3", name, marker="a"))
        self.nimbus.deploy(d)
        first = self.nimbus.function(name)
        with open(os.path.join(d, "app.py"), "w") as f:
            f.write(h.PY_HANDLER.replace("__MARKER__", "b"))
        p = self.nimbus.deploy(d)
        self.assertRegex(p.stdout + p.stderr, r"(?i)(version\W*2\b|\bv2\b|:2\b)")
        second = self.nimbus.function(name)
        self.assertEqual(second["version"], "2")
        self.assertEqual(second["versions"], ["1", "2"])
        self.assertNotEqual(second["code_sha256"], first["code_sha256"])
        r = self.nimbus.invoke(name, {"action": "echo"})
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["marker"], "b")
        self.assertEqual(r.header("X-Amz-Executed-Version"), "2")

    def test_an_older_version_still_runs_through_its_qualifier(self):
        name = h.unique_name("deploy-qualified")
        d = h.write_function_dir(self.scratch, h.function_files("python3", name, marker="old"))
        self.nimbus.deploy(d)
        with open(os.path.join(d, "app.py"), "w") as f:
            f.write(h.PY_HANDLER.replace("__MARKER__", "new"))
        self.nimbus.deploy(d)
        r = self.nimbus.invoke(name, {"action": "echo"}, qualifier="1")
        self.assertStatus(r, 200)
        self.assertEqual(r.json()["marker"], "old")
        self.assertEqual(r.json()["functionVersion"], "1")


if __name__ == "__main__":
    h.main()
