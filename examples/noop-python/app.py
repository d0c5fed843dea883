"""noop-python: the benchmark function; answers 200 "ok" and does nothing else."""

_OK = {"statusCode": 200, "body": "ok"}


def handler(event, context):
    return _OK
