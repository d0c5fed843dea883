#!/usr/bin/env bash
# `make run`: starts nimbus on LISTEN with its data in DATA, deploys the examples, prints how to
# call them, and keeps the daemon in the foreground until Ctrl-C.
set -euo pipefail
build=${1:-build}; listen=${2:-127.0.0.1:8080}; data=${3:-.nimbus}
nimbus="$build/nimbus"
endpoint="http://$listen"

if curl -fsS -o /dev/null "$endpoint/metrics" 2>/dev/null; then
  echo "something already answers at $endpoint; stop it or run: make run LISTEN=127.0.0.1:8081" >&2
  exit 1
fi

"$nimbus" serve --listen "$listen" --data-dir "$data" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$endpoint/metrics" 2>/dev/null && break
  kill -0 $daemon 2>/dev/null || { echo "nimbus serve exited; see the message above" >&2; exit 1; }
  sleep 0.1
done

for dir in examples/*/; do
  "$nimbus" deploy "$dir" --endpoint "$endpoint" || echo "(could not deploy $dir: see above)" >&2
done

cat <<MSG

nimbus is running at $endpoint (data in $data). Try:
$([ "$endpoint" != "http://127.0.0.1:8080" ] && echo "  export NIMBUS_ENDPOINT=$endpoint              # the CLI talks to this daemon")
  curl $endpoint/hello/world                      # hello-python through its route
  curl $endpoint/hello-node/world                 # hello-node
  curl $endpoint/hello-cpp/world                  # hello-cpp (C++ SDK)
  $nimbus invoke hello-python --payload '{"name":"you"}'
  $nimbus ls
  $nimbus logs hello-python
Ctrl-C stops it.
MSG
wait $daemon
