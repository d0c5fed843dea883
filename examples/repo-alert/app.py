"""repo-alert: turns GitHub "repository created" webhooks into a "please review" chat message.

GitHub POSTs the webhook to /hooks/github; the gateway hands it over as an API Gateway HTTP API
v2.0 event. For `X-GitHub-Event: repository` with `"action": "created"` the function posts a
Slack-compatible message ({"text", "blocks"}) to CHAT_WEBHOOK_URL and answers 200
{"notified": true}. Other events and actions answer 202 {"ignored": "..."}, a body that is not
JSON 400, a bad signature 401, and a missing webhook URL or a failed chat POST 500; every
failure is logged with the reason.
"""

import base64
import json
import os

PLACEHOLDER_URL = "http://127.0.0.1:9/unset"
CHAT_TIMEOUT_S = 5


def respond(status, doc):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(doc)}


def fail(status, message):
    print("repo-alert: %d %s" % (status, message))
    return respond(status, {"error": message})


def mrkdwn_escape(text):
    # Slack's mrkdwn treats &, < and > as control characters.
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_message(full_name, html_url, creator):
    text = "Please review the new repository %s (%s), created by %s." % (full_name, html_url, creator)
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": (
                ":mag: *Please review* the new repository <%s|%s>, created by *%s*." % (
                    html_url, mrkdwn_escape(full_name), mrkdwn_escape(creator)))}},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": "Sent by nimbus repo-alert on GitHub's repository.created event"}]},
        ],
    }


def signature_ok(secret, raw_body, header_value):
    import hashlib
    import hmac

    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header_value or "")


def post_to_chat(url, message):
    """POSTs the message; returns None on success, else why it failed."""
    # Imported here: urllib costs tens of milliseconds and ignored events do not need it.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(message).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=CHAT_TIMEOUT_S) as answer:
            answer.read()
            return None
    except urllib.error.HTTPError as exc:
        return "the chat webhook answered %d %s" % (exc.code, exc.reason)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return "could not reach the chat webhook: %s" % reason


def handler(event, context):
    event = event if isinstance(event, dict) else {}
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}

    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except ValueError:
            return fail(400, "the body is marked base64 but is not valid base64")
    else:
        raw = body.encode("utf-8")

    secret = os.environ.get("GITHUB_WEBHOOK_SECRET", "")
    if secret and not signature_ok(secret, raw, headers.get("x-hub-signature-256")):
        return fail(401, "missing or wrong X-Hub-Signature-256; check that GITHUB_WEBHOOK_SECRET "
                         "matches the secret configured on the GitHub webhook")

    try:
        payload = json.loads(raw)
    except ValueError as exc:
        return fail(400, "the body is not JSON (%s); set the GitHub webhook's content type to "
                         "application/json" % exc)
    if not isinstance(payload, dict):
        return fail(400, "the body is JSON but not an object; expected a GitHub webhook payload")

    kind = headers.get("x-github-event", "")
    if kind != "repository":
        return respond(202, {"ignored": "event '%s' (only 'repository' is handled)" % (kind or "none")})
    action = payload.get("action")
    if action != "created":
        return respond(202, {"ignored": "repository action '%s' (only 'created' is handled)" % action})

    repo = payload.get("repository") or {}
    full_name = repo.get("full_name")
    html_url = repo.get("html_url") or ("https://github.com/%s" % full_name)
    creator = (payload.get("sender") or {}).get("login") or "someone"
    if not full_name:
        return fail(400, "the payload has no repository.full_name; is this a GitHub repository event?")

    url = os.environ.get("CHAT_WEBHOOK_URL", "").strip()
    if not url or url == PLACEHOLDER_URL:
        return fail(500, "CHAT_WEBHOOK_URL is not set; put your chat's incoming-webhook URL in "
                         "function.yaml under environment and deploy again")
    if not url.startswith(("http://", "https://")):
        return fail(500, "CHAT_WEBHOOK_URL must be an http:// or https:// URL, got '%s'" % url)

    problem = post_to_chat(url, build_message(full_name, html_url, creator))
    if problem:
        return fail(500, "%s; %s was not announced" % (problem, full_name))
    print("repo-alert: asked for a review of %s (created by %s)" % (full_name, creator))
    return respond(200, {"notified": True})
