"""hello-python: answers {"message": "hello NAME"}.

Called through the gateway (GET /hello/{name}) it receives an API Gateway HTTP API v2.0 event
and answers a v2.0 result; invoked directly with {"name": "..."} it answers the bare message.
"""

import json


def greeting(name):
    return {"message": "hello %s" % (name or "world")}


def handler(event, context):
    event = event if isinstance(event, dict) else {}
    if "requestContext" in event:  # an HTTP request routed by the gateway
        name = (event.get("pathParameters") or {}).get("name")
        return {
            "statusCode": 200,
            "headers": {"content-type": "application/json"},
            "body": json.dumps(greeting(name)),
        }
    return greeting(event.get("name"))
