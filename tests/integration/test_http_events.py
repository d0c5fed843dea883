#!/usr/bin/env python3
"""The HTTP trigger speaks API Gateway HTTP API payload format 2.0 both ways: the event a
handler sees (each field checked against what the client sent) and how its result becomes the
HTTP answer (status, headers, cookies, body, base64 bodies, bare JSON values)."""

import base64
import copy
import http.client
import json
import os
import socket

import nimbus_harness as h


def request_with_repeats(port, method, path, headers, body=None):
    """http.client keeps repeated headers when sent with putheader, which a dict cannot."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders()
        if body:
            conn.send(body)
        resp = conn.getresponse()
        return h.Response(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def comparable(event):
    """The event minus what legitimately differs between two requests."""
    e = copy.deepcopy(event)
    rc = e.get("requestContext", {})
    for k in ("requestId", "time", "timeEpoch"):
        rc.pop(k, None)
    for k in ("x-amzn-trace-id", "x-request-id"):
        e.get("headers", {}).pop(k, None)
    return e


class HttpEventsTest(h.NimbusTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.names = {}
        for runtime in ("python3", "nodejs", "provided"):
            name = h.unique_name(f"events-{runtime}")
            cls.nimbus.deploy(h.write_function_dir(cls.scratch, h.function_files(
                runtime, name, routes=[("GET", f"/{runtime}/items/{{id}}")]),
                executable=h.EXECUTABLES))
            cls.names[runtime] = name
        cls.py = cls.names["python3"]

    def get_items_event(self, runtime):
        headers = [("User-Agent", "nimbus-it/1.0"), ("Cookie", "c1=v1; c2=v2"),
                   ("X-Multi", "one"), ("X-Multi", "two"), ("X-Mixed-Case", "Kept Value")]
        r = request_with_repeats(self.nimbus.port, "GET",
                                 f"/{runtime}/items/42?a=1&a=2&b=x%20y", headers)
        self.assertStatus(r, 200)
        answer = r.json()
        return r, (answer if runtime == "provided" else answer["event"])

    def test_a_head_request_gets_the_headers_of_a_get_and_no_body(self):
        # Raw socket: a body after HEAD's headers would show up where the next answer starts.
        with socket.create_connection(("127.0.0.1", self.nimbus.port), timeout=10) as sock:
            stream = sock.makefile("rb")
            sock.sendall(f"HEAD /fn/{self.py}/custom HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            status = stream.readline()
            self.assertTrue(status.startswith(b"HTTP/1.1 201"), status)
            headers = {}
            for line in iter(stream.readline, b"\r\n"):
                k, _, v = line.decode().partition(":")
                headers[k.strip().lower()] = v.strip()
            self.assertEqual(headers.get("content-length"), str(len("created")))
            sock.sendall(f"GET /fn/{self.py}/custom HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            self.assertTrue(stream.readline().startswith(b"HTTP/1.1 201"),
                            "bytes after HEAD's headers: it carried a body")

    def test_a_routed_get_arrives_as_an_api_gateway_v2_event(self):
        r, event = self.get_items_event("python3")
        self.assertEqual(event["version"], "2.0")
        self.assertEqual(event["routeKey"], "GET /python3/items/{id}")
        self.assertEqual(event["rawPath"], "/python3/items/42")
        self.assertEqual(event["rawQueryString"], "a=1&a=2&b=x%20y")
        self.assertEqual(event["cookies"], ["c1=v1", "c2=v2"])
        self.assertEqual(event["queryStringParameters"], {"a": "1,2", "b": "x y"})
        self.assertEqual(event["pathParameters"], {"id": "42"})
        self.assertFalse(event["isBase64Encoded"])

    def test_headers_are_lower_cased_and_repeated_headers_joined_with_commas(self):
        _, event = self.get_items_event("python3")
        headers = event["headers"]
        for key in headers:
            self.assertEqual(key, key.lower(), f"header name {key!r} is not lower-case")
        self.assertEqual(headers["x-multi"], "one,two")
        self.assertEqual(headers["x-mixed-case"], "Kept Value")
        self.assertEqual(headers["user-agent"], "nimbus-it/1.0")
        self.assertEqual(headers["host"], f"127.0.0.1:{self.nimbus.port}")

    def test_the_request_context_names_method_path_protocol_source_and_agent(self):
        r, event = self.get_items_event("python3")
        http_ctx = event["requestContext"]["http"]
        self.assertEqual(http_ctx["method"], "GET")
        self.assertEqual(http_ctx["path"], "/python3/items/42")
        self.assertEqual(http_ctx["protocol"], "HTTP/1.1")
        self.assertEqual(http_ctx["sourceIp"], "127.0.0.1")
        self.assertEqual(http_ctx["userAgent"], "nimbus-it/1.0")
        request_id = event["requestContext"]["requestId"]
        self.assertIsInstance(request_id, str)
        self.assertTrue(request_id)

    def test_each_request_gets_its_own_request_id(self):
        _, first = self.get_items_event("python3")
        _, second = self.get_items_event("python3")
        self.assertNotEqual(first["requestContext"]["requestId"],
                            second["requestContext"]["requestId"])

    def test_a_text_body_arrives_unencoded_through_slash_fn(self):
        body = json.dumps({"text": "héllo wörld", "n": 1}).encode()
        r = self.nimbus.request("POST", f"/fn/{self.py}/echo-body?x=1", body,
                                {"Content-Type": "application/json; charset=utf-8"})
        self.assertStatus(r, 200)
        event = r.json()["event"]
        self.assertEqual(event["routeKey"], f"ANY /fn/{self.py}/{{proxy+}}")
        self.assertEqual(event["pathParameters"], {"proxy": "echo-body"})
        self.assertEqual(event["rawQueryString"], "x=1")
        self.assertEqual(event["requestContext"]["http"]["method"], "POST")
        self.assertEqual(event["body"], body.decode())
        self.assertFalse(event["isBase64Encoded"])
        self.assertEqual(event["headers"]["content-type"], "application/json; charset=utf-8")

    def test_nodejs_and_provided_handlers_see_the_same_event_as_python(self):
        _, py = self.get_items_event("python3")
        for runtime in ("nodejs", "provided"):
            _, other = self.get_items_event(runtime)
            expected = comparable(py)
            expected["routeKey"] = f"GET /{runtime}/items/{{id}}"
            expected["rawPath"] = f"/{runtime}/items/42"
            expected["requestContext"]["http"]["path"] = f"/{runtime}/items/42"
            if "routeKey" in expected["requestContext"]:
                expected["requestContext"]["routeKey"] = expected["routeKey"]
            self.assertEqual(comparable(other), expected, runtime)

    def test_status_headers_cookies_and_body_of_a_result_reach_the_client(self):
        r = self.nimbus.request("GET", f"/fn/{self.py}/custom")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.header("x-custom"), "yes")
        self.assertEqual(r.header("content-type"), "text/plain")
        self.assertEqual(sorted(r.header_all("set-cookie")), ["a=1; Path=/", "b=2; HttpOnly"])
        self.assertEqual(r.body, b"created")

    def test_a_bare_json_value_becomes_a_200_json_response(self):
        r = self.nimbus.request("GET", f"/fn/{self.py}/bare-list")
        self.assertStatus(r, 200)
        self.assertTrue(r.header("content-type").startswith("application/json"),
                        r.header("content-type"))
        self.assertEqual(r.json(), [1, "two", {"three": 3}])

    def test_a_bare_json_object_without_status_code_becomes_the_body(self):
        r = self.nimbus.request("GET", f"/fn/{self.py}/plain-object")
        self.assertStatus(r, 200)
        self.assertTrue(r.header("content-type").startswith("application/json"))
        self.assertEqual(r.json()["event"]["rawPath"], f"/fn/{self.py}/plain-object")

    def test_binary_bodies_round_trip_base64_encoded_both_ways(self):
        data = os.urandom(200_000) + bytes(range(256))
        r = self.nimbus.request("POST", f"/fn/{self.py}/binary", data,
                                {"Content-Type": "application/octet-stream"})
        self.assertStatus(r, 200)
        self.assertEqual(r.header("x-saw-base64"), "true",
                         "an octet-stream body must reach the handler base64-encoded")
        self.assertEqual(r.header("content-type"), "application/octet-stream")
        self.assertEqual(len(r.body), len(data))
        self.assertTrue(r.body == data, "the bytes that came back differ from those sent")

    def test_an_unknown_route_answers_404_not_found(self):
        r = self.nimbus.request("GET", "/no/such/route")
        self.assertStatus(r, 404)
        self.assertEqual(r.json(), {"message": "Not Found"})


if __name__ == "__main__":
    h.main()
