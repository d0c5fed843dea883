"""async-start: records when an asynchronous invocation began executing, for bench/async.

At handler entry it takes the wall clock (CLOCK_REALTIME, ns) and writes it to
/mnt/starts/REQUEST_ID, REQUEST_ID being the id the caller got with its 202. The file is
written under a temporary name and renamed, so the reader (bench/client.cc async-latency,
watching the directory with inotify) sees it whole. One file per request: files one instance
creates are not writable by another. At import, each instance also writes its Python version
to /mnt/starts/python-PID.
"""

import os
import platform
import time

_DIR = "/mnt/starts"

# Which Python runs the handler, for the report: once per instance, at import (not timed).
try:
    with open(os.path.join(_DIR, "python-%d" % os.getpid()), "w") as f:
        f.write(platform.python_version())
except OSError:
    pass


def handler(event, context):
    start_ns = time.time_ns()
    path = os.path.join(_DIR, context.aws_request_id)
    with open(path + ".tmp", "w") as f:
        f.write(str(start_ns))
    os.rename(path + ".tmp", path)
    return None
