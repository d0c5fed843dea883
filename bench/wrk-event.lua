-- wrk script for asynchronous invocations: POST an event of about 100 bytes to the Invoke API
-- with X-Amz-Invocation-Type: Event. The daemon answers 202 once the event is durable, and an
-- error status (4xx/5xx) otherwise, so wrk's "Non-2xx" count is the count of refused events.
wrk.method = "POST"
wrk.body = '{"source":"bench.async","detail-type":"tick","detail":{"seq":1,"note":"a row about 100 bytes"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Amz-Invocation-Type"] = "Event"
