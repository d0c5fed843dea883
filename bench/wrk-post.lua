-- wrk script for the Lambda Invoke API: POST an empty JSON event.
wrk.method = "POST"
wrk.body = "{}"
wrk.headers["Content-Type"] = "application/json"
