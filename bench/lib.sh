# Shell helpers shared by bench/run and bench/async: logging and raw result lines, starting
# and stopping servers (each in its own process group, every one written down so that the
# EXIT trap stops them all), waiting for readiness, free ports, the nimbus daemon, and the
# benchmark's own client tool. Sourced, not run.
#
# The sourcing script sets: BENCH, WORK, T_START, RUN_ID, RESULTS (raw results file),
# PIDFILE (one started pid a line), FAILED=0, NIMBUS (the binary), and after build_client,
# CLIENT; then installs `trap cleanup EXIT`.

log() { printf '[%4ss] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }
record() { echo "$*" >>"$RESULTS"; }
# Records a measurement that could not be made; the run goes on, and exits 1 at the end.
fail() {
  local section=$1 id=$2; shift 2
  log "FAILED $section $id: $*"
  record "section=$section id=$id failed=\"$(echo "$*" | tr '"\n' "' " | sed 's/ *$//')\""
  FAILED=1
}
# "a=1 b=2" -> "p_a=1 p_b=2"
prefix() { sed -E "s/(^| )([a-z_0-9]+)=/\1$1_\2=/g"; }

# ---- processes ---------------------------------------------------------------------------

# start_bg LOG CMD...: starts CMD as the leader of its own process group; BG_PID is its pid.
start_bg() {
  local logf=$1; shift
  setsid "$@" >"$logf" 2>&1 </dev/null &
  BG_PID=$!
  echo "$BG_PID" >>"$PIDFILE"
}

# stop PID: SIGTERM to its process group, then SIGKILL to whatever of its tree is left.
stop() {
  local pid=$1 tree i
  kill -0 "$pid" 2>/dev/null || return 0
  tree=$("$CLIENT" tree "$pid" 2>/dev/null || echo "$pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  for i in $tree; do kill -KILL "$i" 2>/dev/null || true; done
  wait "$pid" 2>/dev/null || true
}

# Stops everything this script started: the pids written down, then any process whose
# environment carries this script's NIMBUS_BENCH_RUN (one started just before Ctrl-C).
cleanup() {
  local pid
  [ -f "$PIDFILE" ] || return 0
  for pid in $(tac "$PIDFILE" 2>/dev/null); do stop "$pid"; done
  : >"$PIDFILE"
  if [ -x "${CLIENT:-}" ]; then
    for pid in $("$CLIENT" envpids "NIMBUS_BENCH_RUN=$RUN_ID" 2>/dev/null); do
      kill -KILL "$pid" 2>/dev/null || true
    done
  fi
}

wait_ready() {  # wait_ready URL PID: bounded wait until URL answers (any status)
  if ! "$CLIENT" wait "$1" --timeout-ms 20000 >/dev/null; then
    return 1
  fi
  kill -0 "$2" 2>/dev/null
}

freeport() { "$CLIENT" freeport; }

start_nimbus() {  # start_nimbus DATADIR LOG [FLAG...]: sets NIMBUS_PID, NIMBUS_URL, NIMBUS_TOKEN
  local port data=$1 logf=$2
  shift 2
  port=$(freeport)
  rm -rf "$data"; mkdir -p "$data"
  start_bg "$logf" "$NIMBUS" serve --listen "127.0.0.1:$port" --data-dir "$data" "$@"; NIMBUS_PID=$BG_PID
  NIMBUS_URL=http://127.0.0.1:$port NIMBUS_LOG=$logf
  wait_ready "$NIMBUS_URL/v1/functions" "$NIMBUS_PID" || return 1
  NIMBUS_TOKEN=$(cat "$data/admin.token" 2>/dev/null)
  export NIMBUS_TOKEN
}

# build_client: compiles bench/client.cc into $WORK/client when missing or older than the
# source; sets CLIENT.
build_client() {
  mkdir -p "$WORK"
  CLIENT=$WORK/client
  if [ ! -x "$CLIENT" ] || [ "$BENCH/client.cc" -nt "$CLIENT" ]; then
    g++ -std=c++20 -O2 -Wall -pthread -o "$CLIENT.tmp.$$" "$BENCH/client.cc"
    mv -f "$CLIENT.tmp.$$" "$CLIENT"
  fi
}
