#!/usr/bin/env python3
"""Turns the raw lines bench/run recorded into the markdown report and the charts.

Input: one measurement a line, `section=... id=... key=value ...` (values with spaces are
double-quoted), as written by bench/run and bench/async. Output: a markdown file with the
machine, the tables, the BRIEF section 5 targets beside the measured values, and PNG charts
drawn by gnuplot; with --async-only, just bench/async's section (asynchronous invocations).
Everything derived (CPU per request, ratios, overheads) is computed here, from the raw
counters, so the raw file alone is enough to re-make a report.

Usage: report.py RESULTS --out FILE.md [--charts DIR] [--gnuplot SCRIPT] [--async-only]
"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys

SHORT = {
    "limit": "limit",
    "nginx": "nginx->limit",
    "workerd": "workerd",
    "nimbus-http-cpp": "nimbus http C++",
    "nimbus-http-python": "nimbus http Python",
    "nimbus-http-node": "nimbus http Node",
    "nimbus-invoke-cpp": "nimbus invoke C++",
    "nimbus-invoke-python": "nimbus invoke Python",
    "nimbus-invoke-node": "nimbus invoke Node",
}
RUNTIME_LABEL = {"cpp": "C++ (provided)", "python": "Python", "node": "Node.js"}
COLD_TARGET_MS = {"cpp": 1.0, "python": 5.0, "node": 5.0}


def parse(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            row = {}
            for tok in shlex.split(line):
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    row[k] = v
            rows.append(row)
    return rows


def num(row, key, default=None):
    try:
        return float(row[key])
    except (KeyError, ValueError):
        return default


def fmt(v, digits=0, unit=""):
    if v is None:
        return "n/a"
    if digits == 0:
        s = f"{v:,.0f}"
    else:
        s = f"{v:,.{digits}f}"
    return s + unit


def us(v):
    """A latency in microseconds, shown in us below 10 ms and in ms above."""
    if v is None:
        return "n/a"
    if v >= 10000:
        return f"{v / 1000:,.1f} ms"
    return f"{v:,.0f} us"


def mark(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**not met**"


def derive_rep(r):
    """Throughput and CPU figures of one wrk run, from the raw counters around it."""
    clk = num(r, "b_clk_tck", 100.0)
    tick_us = 1e6 / clk
    reqs = num(r, "requests", 0)
    wall = (num(r, "a_now_ns", 0) - num(r, "b_now_ns", 0)) / 1e9
    server = num(r, "a_server_ticks", 0) - num(r, "b_server_ticks", 0)
    root = num(r, "a_root_ticks", 0) - num(r, "b_root_ticks", 0)
    machine = num(r, "a_machine_ticks", 0) - num(r, "b_machine_ticks", 0)
    return {
        "rps": num(r, "rps"),
        "cpu_us": server * tick_us / reqs if reqs else None,
        "root_cpu_us": root * tick_us / reqs if reqs else None,
        "server_cores": server / clk / wall if wall > 0 else None,
        "other_cores": (machine - server) / clk / wall if wall > 0 else None,
        "errors": num(r, "non2xx", 0) + num(r, "sockerr", 0),
    }


def derive_warm(r, reps):
    """A system's warm figures: the median over its wrk runs, and its latency runs."""
    d = dict(r)
    figures = [derive_rep(x) for x in reps]
    for k in ("rps", "cpu_us", "root_cpu_us", "server_cores", "other_cores"):
        vals = [f[k] for f in figures if f[k] is not None]
        d[k] = statistics.median(vals) if vals else None
    rpss = [f["rps"] for f in figures if f["rps"] is not None]
    d["rps_min"] = min(rpss) if rpss else None
    d["rps_max"] = max(rpss) if rpss else None
    d["reps"] = len(figures)
    d["errors"] = sum(f["errors"] for f in figures)
    d["duration"] = reps[0].get("duration") if reps else None
    for k in ("p50", "p99", "p999", "max"):
        d["c_" + k] = num(r, f"c_{k}_us")
        d["o_" + k] = num(r, f"o_{k}_us")
    return d


def median(xs):
    return statistics.median(xs) if xs else None


ASYNC_RATE_TARGET = 10000   # accepted events/s
ASYNC_P50_TARGET_US = 2000  # 202 to execution start


def versus(value, target, higher_is_better, unit_fmt):
    """'met (12% headroom)' or '**not met**: 1,234/s short (12% below)'."""
    if value is None:
        return "n/a"
    if higher_is_better:
        if value >= target:
            return f"met ({(value / target - 1) * 100:.0f}% above)"
        return f"**not met**: {unit_fmt(target - value)} short ({(1 - value / target) * 100:.0f}% below)"
    if value < target:
        return f"met ({unit_fmt(target - value)} under the limit)"
    return f"**not met**: {unit_fmt(value - target)} over ({(value / target - 1) * 100:.0f}% above)"


def derive_async_rep(r):
    """One wrk run of Event invocations and the drain after it, from the raw counters."""
    clk = num(r, "b_clk_tck", 100.0)
    tick_us = 1e6 / clk
    reqs = num(r, "requests", 0)
    refused = num(r, "non2xx", 0)
    accepted = reqs - refused
    secs = num(r, "wrk_seconds", 0)
    load_wall = (num(r, "l_now_ns", 0) - num(r, "b_now_ns", 0)) / 1e9
    d = lambda a, b, k: num(r, f"{a}_{k}", 0) - num(r, f"{b}_{k}", 0)
    root_load, server_load = d("l", "b", "root_ticks"), d("l", "b", "server_ticks")
    machine_load = d("l", "b", "machine_ticks")
    backlog = num(r, "d_backlog")
    drain_s = num(r, "d_seconds")
    per = lambda ticks: ticks * tick_us / accepted if accepted > 0 else None
    cores = lambda ticks: ticks / clk / load_wall if load_wall > 0 else None
    return {
        "rep": r.get("rep", "?"),
        "connections": num(r, "connections"),
        "wrk_mean_ms": num(r, "wrk_mean_ms"),
        "accepted": accepted,
        "rate": accepted / secs if secs > 0 else None,
        "refused": refused,
        "sockerr": num(r, "sockerr", 0),
        "queued_ids": num(r, "queued_ids"),
        "daemon_us": per(root_load),
        "daemon_cores": cores(root_load),
        "instance_cores": cores(server_load - root_load),
        "rest_cores": cores(machine_load - server_load),
        "ran_rate": (accepted - backlog) / secs if backlog is not None and secs > 0 else None,
        "backlog": backlog,
        "drained": r.get("d_drained") == "1",
        "left": num(r, "d_left"),
        "dead": num(r, "d_dead"),
        "drain_s": drain_s,
        "drain_rate": backlog / drain_s if backlog and drain_s else None,
        "total_us": per(d("a", "b", "server_ticks")),
        "total_daemon_us": per(d("a", "b", "root_ticks")),
    }


def async_section(rows):
    """The markdown of bench/async's measurements: accepted rate and drain, 202 to execution
    start, the durability reference, and the two targets."""
    by = lambda s: [r for r in rows if r.get("section") == s]
    meta = (by("async_run") or [{}])[0]
    runs = [r for r in by("async_wrk") if "failed" not in r]
    reps = [derive_async_rep(r) for r in runs if r.get("id") != "sweep"]
    sweep = [derive_async_rep(r) for r in runs if r.get("id") == "sweep"]
    lat = next((r for r in by("async_latency") if "failed" not in r), None)
    ref = next((r for r in by("async_ref") if "failed" not in r), None)
    failed = [r for r in rows if r.get("section", "").startswith("async") and "failed" in r]
    out = []
    w = out.append
    conns = meta.get("connections", "?")
    w("## Asynchronous invocations (Invoke with `X-Amz-Invocation-Type: Event`)")
    w("")
    w(f"The daemon answers 202 once an event is durable in its queue (SQLite WAL, synchronous=FULL, "
      f"group commit: one fsync per group of events). Accepted rate: wrk posting ~100-byte events to "
      f"the C++ no-op (`examples/noop-cpp`) on {conns} connections, {meta.get('duration', '?')} s per "
      f"run; every answer other than 202 counts as refused. The accepted events run on the function "
      f"at the same time (async work may hold all but a fifth of its `concurrency.max` instances), "
      f"which competes with the daemon and wrk for the {meta.get('nproc', '?')} cores; after each "
      f"run the backlog (queued + retrying + in flight) is polled until empty. Disk: "
      f"{meta.get('fs', '?')}.")
    w("")
    if reps:
        rates = [x["rate"] for x in reps if x["rate"] is not None]
        w(f"| run | accepted/s | refused | socket errors | daemon CPU us/event | daemon cores | "
          f"instance cores | rest of machine, cores | ran during load, /s | backlog at stop | "
          f"drain | drain rate, /s |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for x in reps:
            drain = fmt(x["drain_s"], 2, " s") if x["drained"] else f"not empty after {fmt(x['drain_s'], 0, ' s')} ({fmt(x['left'])} left)"
            w(f"| {x['rep']} | {fmt(x['rate'])} | {fmt(x['refused'])} | {fmt(x['sockerr'])} | "
              f"{fmt(x['daemon_us'], 1)} | {fmt(x['daemon_cores'], 2)} | {fmt(x['instance_cores'], 2)} | "
              f"{fmt(x['rest_cores'], 2)} | {fmt(x['ran_rate'])} | {fmt(x['backlog'])} | {drain} | "
              f"{fmt(x['drain_rate'])} |")
        if len(reps) > 1:
            med = lambda k: median([x[k] for x in reps if x[k] is not None])
            w(f"| **median** | **{fmt(med('rate'))}** ({fmt(min(rates))}-{fmt(max(rates))}) | | | "
              f"{fmt(med('daemon_us'), 1)} | {fmt(med('daemon_cores'), 2)} | {fmt(med('instance_cores'), 2)} | "
              f"{fmt(med('rest_cores'), 2)} | {fmt(med('ran_rate'))} | {fmt(med('backlog'))} | "
              f"{fmt(med('drain_s'), 2, ' s')} | {fmt(med('drain_rate'))} |")
        w("")
        tot = median([x["total_us"] for x in reps if x["total_us"] is not None])
        tot_d = median([x["total_daemon_us"] for x in reps if x["total_daemon_us"] is not None])
        ids = [x for x in reps if x["queued_ids"] is not None]
        check = ""
        if ids:
            check = (f" The daemon wrote {', '.join(fmt(x['queued_ids']) for x in ids)} events to its "
                     f"queue in these runs, against {', '.join(fmt(x['accepted']) for x in ids)} 202s "
                     f"wrk counted (wrk does not count answers still in flight when it stops).")
        dead = sum(x["dead"] or 0 for x in reps + sweep)
        w(f"Daemon CPU per event is the daemon's own threads during the load, divided by the events "
          f"accepted; it includes dispatching the events that ran meanwhile. The whole cost of an "
          f"event, accepted and run (daemon and function instances, load and drain): "
          f"{fmt(tot, 1)} us of CPU, {fmt(tot_d, 1)} us of it the daemon's.{check}"
          + (f" Dead letters after the runs: {fmt(dead)}." if dead else ""))
        w("")
    if reps and sweep:
        w("The same at other connection counts (one run each): every connection waits for its 202, so "
          "the events in flight are what a commit group can hold.")
        w("")
        w("| connections | accepted/s | wrk mean latency | daemon CPU us/event | backlog at stop | drain rate, /s |")
        w("|---:|---:|---:|---:|---:|---:|")
        med = lambda k: median([x[k] for x in reps if x[k] is not None])
        table = [(x["connections"], x["rate"], x["wrk_mean_ms"], x["daemon_us"], x["backlog"], x["drain_rate"], "")
                 for x in sweep]
        table.append((num(meta, "connections"), med("rate"), med("wrk_mean_ms"), med("daemon_us"), med("backlog"),
                      med("drain_rate"), " (median above)"))
        for c, rate, lat_ms, dus, backlog, drate, note in sorted(table, key=lambda t: t[0] or 0):
            w(f"| {fmt(c)}{note} | {fmt(rate)} | {fmt(lat_ms, 2, ' ms')} | {fmt(dus, 1)} | {fmt(backlog)} | "
              f"{fmt(drate)} |")
        w("")
    if lat:
        w(f"202 to execution start, one event at a time on an idle function ({lat.get('runtime', 'Python')}, "
          f"`bench/functions/async-start`): the client notes the wall clock when the 202 has arrived, the "
          f"handler notes it at entry; the next event goes once the previous one has completed and 5 ms "
          f"more have passed. A negative value means the function had started before the 202 reached "
          f"the client: once the event's group has committed, the daemon hands the event to the function "
          f"and sends the 202 side by side, so a delay on the reply path shows as a negative latency.")
        w("")
        w("| function | events | p50 | p90 | p99 | max | min | started before the 202 | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        w(f"| async-start, {lat.get('runtime', 'Python')} | {lat.get('n')} | {us(num(lat, 'p50_us'))} | "
          f"{us(num(lat, 'p90_us'))} | {us(num(lat, 'p99_us'))} | {us(num(lat, 'max_us'))} | "
          f"{us(num(lat, 'min_us'))} | {lat.get('negative', '?')} | {lat.get('errors', '?')} |")
        w("")
    if ref:
        f50 = num(ref, "fsync_p50_us")
        w(f"Reference, same run, same file system (`bench/sqlite-ref.py`, SQLite {ref.get('sqlite', '?')}):")
        w("")
        w("| reference | rate | p50 | p99 |")
        w("|---|---:|---:|---:|")
        w(f"| SQLite, one ~100-byte INSERT per transaction (WAL, synchronous=FULL): one fsync per event | "
          f"{fmt(num(ref, 'inserts_per_s'))} inserts/s | | |")
        w(f"| write of 100 bytes + fsync, one at a time | {fmt(1e6 / f50 if f50 else None)} /s | {us(f50)} | "
          f"{us(num(ref, 'fsync_p99_us'))} |")
        w("")
        if reps:
            best = median([x["rate"] for x in reps if x["rate"] is not None])
            sq = num(ref, "inserts_per_s")
            c = num(meta, "connections")
            bound = c / (f50 / 1e6) if c and f50 else None
            w(f"Group commit turns {fmt(sq)} durable inserts/s (one fsync each) into {fmt(best)} accepted "
              f"events/s ({fmt(best / sq if sq else None, 1)}x). Each connection waits for its 202, so the "
              f"accepted rate is at most connections / commit time: {fmt(c)} / {us(f50)} = about "
              f"{fmt(bound)}/s if every group took one median fsync.")
            w("")
    w("Targets:")
    w("")
    w("| target | measured | |")
    w("|---|---:|---|")
    if reps:
        best = median([x["rate"] for x in reps if x["rate"] is not None])
        w(f"| >= {fmt(ASYNC_RATE_TARGET)} accepted events/s | {fmt(best)}/s | "
          f"{versus(best, ASYNC_RATE_TARGET, True, lambda v: fmt(v) + '/s')} |")
    else:
        w(f"| >= {fmt(ASYNC_RATE_TARGET)} accepted events/s | not measured | n/a |")
    if lat:
        p50 = num(lat, "p50_us")
        w(f"| p50 202 -> execution start < 2 ms | {us(p50)} | "
          f"{versus(p50, ASYNC_P50_TARGET_US, False, us)} |")
    else:
        w("| p50 202 -> execution start < 2 ms | not measured | n/a |")
    w("")
    return out, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--out", required=True)
    ap.add_argument("--charts", default=None)
    ap.add_argument("--gnuplot", default=None)
    ap.add_argument("--async-only", action="store_true",
                    help="write only bench/async's section (what bench/async does)")
    args = ap.parse_args()

    rows = parse(args.results)
    if args.async_only:
        write_async_only(rows, args.out)
        return
    by = lambda s: [r for r in rows if r.get("section") == s]
    machine = (by("machine") or [{}])[0]
    failures = [r for r in rows if "failed" in r]
    reps = by("wrk")
    warm = [derive_warm(r, [x for x in reps if x.get("id") == r["id"]])
            for r in by("warm") if "failed" not in r]
    wid = {r["id"]: r for r in warm}
    limit, nginx, workerd = wid.get("limit"), wid.get("nginx"), wid.get("workerd")
    nimbus_rows = [r for r in warm if r["id"].startswith("nimbus-")]
    ncores = int(machine.get("nproc", "2"))

    out = []
    w = out.append
    quick = machine.get("quick") == "1"
    w("# nimbus benchmark" + (" (quick smoke run: numbers are not meaningful)" if quick else ""))
    w("")
    w(f"Made by `{machine.get('command', 'bench/run')}` on {machine.get('date', '?')}.")
    w("")
    w(f"Machine: {machine.get('nproc', '?')} cores ({machine.get('cpu', '?')}), "
      f"{fmt(num(machine, 'mem_kb', 0) / 1048576, 0)} GiB RAM, Linux {machine.get('kernel', '?')}, "
      f"{machine.get('os', '?')}; load average at start {machine.get('loadavg', '?')}. "
      f"Peers: nginx {machine.get('nginx', '?')}, workerd {machine.get('workerd', '?')}, "
      f"wrk {machine.get('wrk', '?')}, {machine.get('python', '')}, Node.js {machine.get('node', '')}; "
      f"nimbus built as {machine.get('build_type') or '?'}.")
    w("")
    try:
        load = float(machine.get("loadavg", "0").split()[0])
    except ValueError:
        load = 0.0
    if load > 1.0:
        w(f"**The machine was busy when this run started (load average {load:.1f} on {ncores} cores): "
          "other work competed with every measurement, so absolute figures are low and noisy; "
          "the ratios measured in the same run are still the figures to read.**")
        w("")
    w("The load generator runs on the same machine as the server (loopback, nothing pinned), so "
      "the two share its cores; every figure is from this one run, and the ratios against the "
      "references measured in the same run are the numbers to compare across machines. "
      "Server CPU per request is user+sys time of every server process (for nimbus the daemon "
      "and its function instances) divided by the requests served: the steadiest figure on a "
      "shared machine. The last column shows what the rest of the machine (wrk itself, "
      "everything else) used meanwhile: about 1 core is wrk; much more means a noisy run.")
    w("")

    # ---- throughput -------------------------------------------------------------------------
    warm_all = [r for r in by("warm")]
    if warm_all:
        dur = next((r.get("duration") for r in warm if r.get("duration")), "?")
        nrep = next((r["reps"] for r in warm), "?")
        w(f"## Warm throughput: no-op, wrk -t1 -c32, median of {nrep} runs of {dur} s")
        w("")
        w("| system | req/s | (min-max) | x nginx->limit | x workerd | x limit | server CPU us/req | "
          "server cores | rest of machine, cores |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for raw in warm_all:
            if "failed" in raw:
                w(f"| {SHORT.get(raw['id'], raw['id'])} | not measured: {raw['failed']} | | | | | | | |")
                continue
            r = wid[raw["id"]]
            ratio = lambda ref: fmt(r["rps"] / ref["rps"], 2) if ref and ref["rps"] else "n/a"
            cpu = fmt(r["cpu_us"], 1)
            if r["id"].startswith("nimbus-") and r["root_cpu_us"] is not None:
                cpu += f" (daemon {fmt(r['root_cpu_us'], 1)})"
            errs = int(r["errors"])
            rps = fmt(r["rps"]) + (f" ({errs} errors)" if errs else "")
            rng = f"{fmt(r['rps_min'])}-{fmt(r['rps_max'])}"
            other = fmt(r["other_cores"], 2)
            if r["other_cores"] is not None and r["other_cores"] > 1.3:
                other += " (noisy)"
            w(f"| {r['label']} | {rps} | {rng} | {ratio(nginx)} | {ratio(workerd)} | {ratio(limit)} | "
              f"{cpu} | {fmt(r['server_cores'], 2)} | {other} |")
        w("")
        w("![throughput](throughput.png)")
        w("")

    # ---- latency ---------------------------------------------------------------------------
    if warm:
        n = next((r.get("c_n") for r in warm), "?")
        w(f"## Latency, one request at a time (keep-alive, {n} requests each)")
        w("")
        w("| system | p50 | p99 | p99.9 | max | p50 above limit | p99 above limit |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for r in warm:
            above = lambda k: (us(r["c_" + k] - limit["c_" + k]) if limit and r is not limit else "")
            w(f"| {r['label']} | {us(r['c_p50'])} | {us(r['c_p99'])} | {us(r['c_p999'])} | "
              f"{us(r['c_max'])} | {above('p50')} | {above('p99')} |")
        w("")
        o = warm[0]
        w(f"## Latency at a fixed arrival rate ({o.get('o_rate', '?')} req/s over "
          f"{o.get('o_connections', '?')} connections, from each request's scheduled send time)")
        w("")
        w("Open loop: requests are sent on schedule whether or not earlier ones were answered, and "
          "each latency counts from when the request was due, so a stall is charged to every "
          "request it delayed (no coordinated omission).")
        w("")
        w("| system | p50 | p99 | p99.9 | max | answered/s | unsent | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in warm:
            w(f"| {r['label']} | {us(r['o_p50'])} | {us(r['o_p99'])} | {us(r['o_p999'])} | "
              f"{us(r['o_max'])} | {fmt(num(r, 'o_achieved_rps'))} | {r.get('o_unsent', '?')} | "
              f"{r.get('o_errors', '?')} |")
        w("")
        w("![latency](latency.png)")
        w("")

    # ---- targets -----------------------------------------------------------------------------
    w("## Targets (BRIEF section 5) beside the measured values")
    w("")
    if nimbus_rows:
        w("| nimbus path | p50 above limit (<= 50 us) | p99 above limit (<= 250 us) | "
          "req/s vs nginx->limit (>= 1) | req/s vs workerd (> 1) | CPU/req vs nginx->limit (<= 1) |")
        w("|---|---|---|---|---|---|")
        for r in nimbus_rows:
            cells = []
            if limit:
                d50 = r["c_p50"] - limit["c_p50"]
                d99 = r["c_p99"] - limit["c_p99"]
                cells += [f"{us(d50)}: {mark(d50 <= 50)}", f"{us(d99)}: {mark(d99 <= 250)}"]
            else:
                cells += ["n/a", "n/a"]
            for ref, strict in ((nginx, False), (workerd, True)):
                if ref and ref["rps"]:
                    x = r["rps"] / ref["rps"]
                    cells.append(f"{x:.2f}x: {mark(x > 1 if strict else x >= 1)}")
                else:
                    cells.append("n/a")
            if nginx and nginx["cpu_us"]:
                x = r["cpu_us"] / nginx["cpu_us"]
                cells.append(f"{fmt(r['cpu_us'], 1)} vs {fmt(nginx['cpu_us'], 1)} us: {mark(x <= 1)}")
            else:
                cells.append("n/a")
            w(f"| {r['label']} | " + " | ".join(cells) + " |")
        w("")
        best = max(nimbus_rows, key=lambda r: r["rps"] or 0)
        gen = best["other_cores"] or 1.0
        room = max(ncores - gen, 0.1)
        bound = room / (best["cpu_us"] / 1e6) if best["cpu_us"] else None
        inst = (best["cpu_us"] - best["root_cpu_us"]) if best["root_cpu_us"] is not None else None
        sentence = (
            f"What bounds the gap: {best['label']} costs {fmt(best['cpu_us'], 1)} us of server CPU "
            f"per request (the daemon {fmt(best['root_cpu_us'], 1)} us, the function instance "
            f"{fmt(inst, 1)} us)")
        if nginx:
            sentence += f", against {fmt(nginx['cpu_us'], 1)} us for nginx and the limit server together"
        full_cap = ncores / (best["cpu_us"] / 1e6) if best["cpu_us"] else None
        sentence += (
            f". CPU per request alone caps the server side at about {fmt(full_cap)} req/s on all "
            f"{ncores} cores; with wrk and the rest of the machine using {gen:.2f} cores during the "
            f"run, about {room:.2f} cores were left, a cap near {fmt(bound)} req/s (measured "
            f"{fmt(best['rps'])}). So throughput here is CPU per request, and the latency above the "
            f"limit is the extra hops each request makes (gateway, then the instance's Runtime API "
            f"round trip).")
        w(sentence)
        w("")
    else:
        w("nimbus was not measured in this run (see Failures below).")
        w("")

    # ---- cold starts -------------------------------------------------------------------------
    cold, zero, spawn = by("cold"), by("zero"), by("spawn")
    w("## Cold start and wake from zero (request arrival to response, fresh connection)")
    w("")
    w("Cold start: a freshly deployed, never-invoked function's first request. Wake from zero: "
      "a function with `keep_alive: 1` whose instance process has exited, then its next request. "
      "With few samples, max stands in for p99.")
    w("")
    w("| runtime | cold p50 | cold max (n) | target p50 | wake p50 | wake max (n) | instance gone after | "
      "p50 target met | max <= 3x p50 |")
    w("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for rt in ("cpp", "python", "node"):
        cs = [num(r, "us") for r in cold if r.get("id") == rt and "failed" not in r]
        zs = [num(r, "us") for r in zero if r.get("id") == rt and "failed" not in r]
        gone = [num(r, "gone_ms") for r in zero if r.get("id") == rt and "failed" not in r]
        if not cs and not zs:
            continue
        tgt = COLD_TARGET_MS[rt] * 1000
        allv = cs + zs
        met_p50 = all(median(x) <= tgt for x in (cs, zs) if x)
        met_tail = all(max(x) <= 3 * median(x) for x in (cs, zs) if x)
        w(f"| {RUNTIME_LABEL[rt]} | {us(median(cs))} | {us(max(cs)) if cs else 'n/a'} ({len(cs)}) | "
          f"{us(tgt)} | {us(median(zs))} | {us(max(zs)) if zs else 'n/a'} ({len(zs)}) | "
          f"{fmt(median(gone), 0, ' ms') if gone else 'n/a'} | {mark(met_p50 if allv else None)} | "
          f"{mark(met_tail if allv else None)} |")
    sandbox_rows = []
    for rt in ("cpp", "python", "node"):
        on = [num(r, "us") for r in cold if r.get("id") == rt and "failed" not in r]
        off = [num(r, "us") for r in cold if r.get("id") == rt + "-nosandbox" and "failed" not in r]
        if on and off:
            sandbox_rows.append((rt, on, off))
    for ref, label in (("limit", "fork+exec of the limit server to its first response"),
                       ("workerd", "workerd start to first response (reference)")):
        xs = [num(r, "us") for r in spawn if r.get("id") == ref and "failed" not in r]
        if xs:
            w(f"| {label} | {us(median(xs))} | {us(max(xs))} ({len(xs)}) | | | | | | |")
    w("")

    if sandbox_rows:
        w("What the sandbox costs a cold start: the same cold starts on a daemon started with "
          "`--insecure-no-sandbox`, in the same run (target: sandbox on within 1.5x of off).")
        w("")
        w("| runtime | sandbox on p50 | sandbox off p50 | on / off | within 1.5x |")
        w("|---|---:|---:|---:|---|")
        for rt, on, off in sandbox_rows:
            ratio = median(on) / median(off) if median(off) else None
            w(f"| {RUNTIME_LABEL[rt]} | {us(median(on))} ({len(on)}) | {us(median(off))} ({len(off)}) | "
              f"{fmt(ratio, 2, 'x') if ratio else 'n/a'} | {mark(ratio <= 1.5 if ratio else None)} |")
        w("")

    # ---- footprint ---------------------------------------------------------------------------
    fp = [r for r in by("footprint") if "failed" not in r]
    if fp:
        w("## Footprint")
        w("")
        w("| deployed functions | daemon RSS | daemon PSS | deploys/s (admin API) | idle daemon CPU | "
          "instance processes |")
        w("|---:|---:|---:|---:|---:|---:|")
        for r in fp:
            rate = ""
            if num(r, "deployed") and num(r, "seconds"):
                rate = fmt(num(r, "deployed") / num(r, "seconds"))
            idle = ""
            if "a_server_ticks" in r:
                clk = num(r, "b_clk_tck", 100.0)
                secs = (num(r, "a_now_ns") - num(r, "b_now_ns")) / 1e9
                ms = (num(r, "a_server_ticks") - num(r, "b_server_ticks")) * 1000 / clk
                idle = f"{ms / secs:.1f} ms/s" if secs > 0 else ""
            procs = r.get("children_procs", "0")
            w(f"| {r['functions']} | {fmt(num(r, 'rss_kb', 0) / 1024, 1)} MB | "
              f"{fmt(num(r, 'pss_kb', 0) / 1024, 1)} MB | {rate} | {idle} | {procs} |")
        top = max(fp, key=lambda r: int(r["functions"]))
        rss_mb = num(top, "rss_kb", 0) / 1024
        w("")
        if int(top["functions"]) >= 1000:
            w(f"Target: <= 20 MB RSS idle with 1,000 deployed functions: {fmt(rss_mb, 1)} MB, "
              f"{mark(rss_mb <= 20)}.")
        else:
            w(f"Target: <= 20 MB RSS idle with 1,000 deployed functions: measured only up to "
              f"{top['functions']} here ({fmt(rss_mb, 1)} MB).")
        w("")

    im = [r for r in by("instmem") if "failed" not in r]
    if im:
        w("## Memory per warm instance (after the warm loads)")
        w("")
        w("| runtime | warm instances | processes | RSS per instance | PSS per instance | daemon RSS |")
        w("|---|---:|---:|---:|---:|---:|")
        for r in im:
            n = num(r, "instances", 0)
            per = lambda k: fmt(num(r, k, 0) / n / 1024, 1) + " MB" if n else "n/a"
            w(f"| {r['label']} | {int(n)} | {r.get('procs', '?')} | {per('rss_kb')} | {per('pss_kb')} | "
              f"{fmt(num(r, 'daemon_rss_kb', 0) / 1024, 1)} MB |")
        w("")

    dn = [r for r in by("density") if "failed" not in r]
    if dn:
        r = dn[0]
        n = num(r, "instances", 0)
        used = (num(r, "avail0_kb", 0) - num(r, "avail1_kb", 0)) / 1024
        clean = (by("density_cleanup") or [{}])[0]
        w("## Density")
        w("")
        w(f"Asked for {r['asked']} warm instances of the C++ no-op (method: {r.get('method')}): "
          f"{int(n)} came up within {r['seconds']} s, using {fmt(num(r, 'rss_kb', 0) / 1024, 0)} MB RSS "
          f"({fmt(num(r, 'pss_kb', 0) / 1024, 0)} MB PSS; the machine's available memory fell by "
          f"{fmt(used, 0)} MB); daemon RSS then {fmt(num(r, 'daemon_rss_kb', 0) / 1024, 1)} MB. "
          f"After deleting the function, {clean.get('left', '?')} instance processes were left "
          f"({clean.get('seconds', '?')} s later). Target >= 1,000 warm instances: "
          f"{mark(n >= 1000) if int(r['asked']) >= 1000 else 'not attempted at this size'}.")
        w("")

    if any(r.get("section", "").startswith("async") for r in rows):
        section, _ = async_section(rows)
        out.extend(section)

    if failures:
        w("## Failures (measurements that could not be made)")
        w("")
        restarts = by("restart")
        if restarts:
            w(f"The nimbus daemon died {len(restarts)} time(s) during the run "
              f"({', '.join(r.get('status', '?') for r in restarts)}); each time bench/run "
              f"recorded it and started a fresh daemon for the measurements that followed.")
            w("")
        for r in failures:
            w(f"- {r.get('section')} {r.get('id')}: {r['failed']}")
        w("")
    run = (by("run") or [{}])[0]
    w(f"Run time: {run.get('seconds', '?')} s; load average at the end {run.get('loadavg_end', '?')}.")
    w("")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(out))

    # ---- charts --------------------------------------------------------------------------------
    if warm and args.gnuplot and args.charts:
        dat = os.path.join(args.charts, "bench.dat")
        with open(dat, "w") as f:
            f.write("# label rps cpu_us p50 p99 p999 open_p50 open_p99 open_p999\n")
            for r in warm:
                vals = [r["rps"], r["cpu_us"], r["c_p50"], r["c_p99"], r["c_p999"],
                        r["o_p50"], r["o_p99"], r["o_p999"]]
                f.write(f"\"{SHORT.get(r['id'], r['id'])}\" " +
                        " ".join("0" if v is None else f"{v:.2f}" for v in vals) + "\n")
        try:
            subprocess.run(["gnuplot", "-e", f"datafile='{dat}'; outdir='{args.charts}'",
                            args.gnuplot], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"report.py: gnuplot failed ({e}); the markdown report is written without charts",
                  file=sys.stderr)
        os.remove(dat)


def write_async_only(rows, path):
    """bench/async's own report: a header, its section, its failures."""
    meta = next((r for r in rows if r.get("section") == "async_run"), {})
    end = next((r for r in rows if r.get("section") == "async_end"), {})
    out = []
    w = out.append
    quick = meta.get("quick") == "1"
    w("# nimbus asynchronous invocations" + (" (quick smoke run: numbers are not meaningful)" if quick else ""))
    w("")
    w(f"Made by `{meta.get('command', 'bench/async')}` on {meta.get('date', '?')}; "
      f"{meta.get('nproc', '?')} cores, load average at start {meta.get('loadavg', '?')}, at the end "
      f"{end.get('loadavg_end', '?')}; nimbus built as {meta.get('build_type') or '?'}; "
      f"{meta.get('python', '')}. The load generator shares the machine's cores with the daemon.")
    w("")
    # Only the load before the run says whether other work was competing: the run itself keeps
    # both cores busy, so the load at its end is always high.
    loads = []
    for v in (meta.get("loadavg", ""),):
        try:
            loads.append(float(v.split()[0]))
        except (ValueError, IndexError):
            pass
    if loads and max(loads) > 1.0:
        w(f"**The machine was busy when this run started (1-minute load average {max(loads):.1f} on "
          f"{meta.get('nproc', '?')} cores): other work competed with every measurement, so the figures "
          f"are low and noisy.**")
        w("")
    section, failed = async_section(rows)
    out.extend(section)
    if failed:
        w("## Failures (measurements that could not be made)")
        w("")
        for r in failed:
            w(f"- {r.get('section')} {r.get('id')}: {r['failed']}")
        w("")
    w(f"Run time: {end.get('seconds', '?')} s.")
    w("")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
