#!/usr/bin/env python3
"""The repo-alert example end to end: deployed from a copy of examples/repo-alert whose
CHAT_WEBHOOK_URL points at a receiver inside this test, it turns GitHub's "repository created"
webhook into a Slack-compatible chat message naming the repository and its creator."""

import hashlib
import hmac
import http.server
import json
import os
import re
import shutil
import threading
import uuid

import nimbus_harness as h

EXAMPLE = os.path.join(h.source_dir(), "examples", "repo-alert")


class Receiver:
    """An http.server on 127.0.0.1:0 that records every POST it gets and answers 200 "ok"
    (what Slack's incoming webhooks answer)."""

    def __init__(self):
        self.posts = []
        self.arrived = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                outer.posts.append({"path": self.path, "headers": dict(self.headers),
                                    "body": body})
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                outer.arrived.set()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/XXXX"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def set_env_value(yaml_text, key, value):
    """Replaces `KEY: ...` (anywhere under environment:) keeping its indentation."""
    pattern = re.compile(rf"^(\s*){re.escape(key)}\s*:.*$", re.M)
    if not pattern.search(yaml_text):
        raise AssertionError(f"{key} is not in {EXAMPLE}/function.yaml's environment; the test "
                             "points it at a local receiver")
    return pattern.sub(lambda m: f"{m.group(1)}{key}: {json.dumps(value)}", yaml_text, count=1)


def env_value(yaml_text, key):
    m = re.search(rf"^\s*{re.escape(key)}\s*:\s*(.*?)\s*$", yaml_text, re.M)
    return m.group(1).strip("\"'") if m else None


class RepoAlertTest(h.NimbusTestCase):

    def setUp(self):
        self.assertTrue(os.path.isfile(os.path.join(EXAMPLE, "function.yaml")),
                        f"{EXAMPLE}/function.yaml is missing")
        self.receiver = Receiver()
        self.addCleanup(self.receiver.close)
        self.fn_dir = os.path.join(self.scratch, f"repo-alert-{uuid.uuid4().hex[:6]}")
        shutil.copytree(EXAMPLE, self.fn_dir, symlinks=True)
        path = os.path.join(self.fn_dir, "function.yaml")
        with open(path) as f:
            self.yaml = f.read()
        self.yaml = set_env_value(self.yaml, "CHAT_WEBHOOK_URL", self.receiver.url)
        with open(path, "w") as f:
            f.write(self.yaml)
        self.name = re.search(r"^name:\s*(\S+)", self.yaml, re.M).group(1).strip("\"'")
        self.nimbus.deploy(self.fn_dir)
        doc = self.nimbus.function(self.name)
        routes = [r for r in doc["routes"] if r["method"] in ("POST", "ANY")]
        self.assertTrue(routes, f"repo-alert has no POST route: {doc['routes']}")
        # Path parameters in the route ({x}, {proxy+}) get a plausible value.
        self.route = re.sub(r"\{[^}]+\}", "github", routes[0]["path"])

    def post_webhook(self, event, payload):
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
                   "X-GitHub-Delivery": str(uuid.uuid4()),
                   "User-Agent": "GitHub-Hookshot/abc123"}
        # If the example checks GitHub's signature, sign with the secret its manifest holds.
        for key in re.findall(r"^\s*([A-Z0-9_]*SECRET[A-Z0-9_]*)\s*:", self.yaml, re.M):
            secret = env_value(self.yaml, key)
            if secret:
                sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Hub-Signature-256"] = f"sha256={sig}"
        return self.nimbus.request("POST", self.route, body, headers)

    def created_payload(self, full_name, login):
        owner, repo = full_name.split("/")
        return {"action": "created",
                "repository": {"id": 123456, "name": repo, "full_name": full_name,
                               "private": False, "html_url": f"https://github.com/{full_name}",
                               "owner": {"login": owner}},
                "organization": {"login": owner},
                "sender": {"login": login, "html_url": f"https://github.com/{login}"}}

    def test_a_repository_created_webhook_posts_a_chat_message_naming_repo_and_creator(self):
        r = self.post_webhook("repository", self.created_payload("octo-org/shiny-new-repo",
                                                                 "monalisa"))
        self.assertTrue(200 <= r.status < 300, f"the webhook was answered {r!r}")
        self.assertTrue(self.receiver.arrived.wait(10),
                        "the chat webhook received nothing within 10 s")
        self.assertEqual(len(self.receiver.posts), 1, self.receiver.posts)
        post = self.receiver.posts[0]
        self.assertEqual(post["path"], "/services/T000/B000/XXXX")
        content_type = {k.lower(): v for k, v in post["headers"].items()}.get("content-type", "")
        self.assertTrue(content_type.startswith("application/json"), content_type)
        message = json.loads(post["body"])
        self.assertIsInstance(message.get("text"), str, "Slack messages carry a text field")
        self.assertIn("octo-org/shiny-new-repo", message["text"])
        self.assertIn("monalisa", message["text"])


if __name__ == "__main__":
    h.main()
