#!/usr/bin/python3
"""The durability reference for bench/async: what one fsync per event costs on this disk.

Two measurements in DIR (give the directory the daemon keeps its data in, so it is the same
disk and file system):
  sqlite  inserts per second into a table shaped like nimbus's queue of events (journal_mode
          WAL, synchronous FULL), one INSERT per transaction with a payload of about 100
          bytes, so every insert waits for its own fsync: the rate a queue without group
          commit would reach;
  fsync   a plain 100-byte write + fsync to one file, timed one at a time (p50, p99).
Prints one line of key=value pairs; the files it made are removed.

Usage: sqlite-ref.py DIR [--seconds S]
"""

import argparse
import os
import sqlite3
import time

PAYLOAD = b'{"source":"bench.async","detail-type":"tick","detail":{"seq":1,"note":"a row about 100 bytes"}}'


def sqlite_inserts(path, seconds):
    db = sqlite3.connect(path, isolation_level=None)
    mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    db.execute("PRAGMA synchronous=FULL")
    # The columns of the queue's `events` table (src/queue/sqlite_event_queue.cc).
    db.execute("""CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, function TEXT NOT NULL,
        qualifier TEXT NOT NULL, payload BLOB NOT NULL, source TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, depth INTEGER NOT NULL DEFAULT 0,
        enqueued_ms INTEGER NOT NULL, visible_at_ms INTEGER NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '')""")
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    while time.monotonic() < end:
        db.execute("BEGIN")
        db.execute("INSERT INTO events (request_id, function, qualifier, payload, source, enqueued_ms) "
                   "VALUES (?, 'noop-cpp', '', ?, 'invoke', ?)",
                   ("%08x-0000-4000-8000-%012x" % (n, n), PAYLOAD, int(time.time() * 1000)))
        db.execute("COMMIT")
        n += 1
    secs = time.monotonic() - t0
    db.close()
    return n, secs, mode


def fsync_latency(path, seconds):
    lat = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter_ns()
            os.write(fd, PAYLOAD[:100])
            os.fsync(fd)
            lat.append(time.perf_counter_ns() - t0)
    finally:
        os.close(fd)
    lat.sort()
    pick = lambda p: lat[min(len(lat) - 1, max(0, int(p * len(lat) + 0.999999) - 1))] / 1000.0
    return len(lat), pick(0.5), pick(0.99), lat[-1] / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    db = os.path.join(args.dir, "sqlite-ref.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    try:
        n, secs, mode = sqlite_inserts(db, args.seconds)
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
    fpath = os.path.join(args.dir, "fsync-ref.dat")
    try:
        fn, f50, f99, fmax = fsync_latency(fpath, min(args.seconds, 2.0))
    finally:
        if os.path.exists(fpath):
            os.remove(fpath)
    st = os.statvfs(args.dir)
    print(f"inserts={n} seconds={secs:.3f} inserts_per_s={n / secs:.1f} journal_mode={mode} "
          f"sqlite=\"{sqlite3.sqlite_version}\" fsync_n={fn} fsync_p50_us={f50:.1f} "
          f"fsync_p99_us={f99:.1f} fsync_max_us={fmax:.1f} fs_block={st.f_bsize}")


if __name__ == "__main__":
    main()
