#!/usr/bin/env bash
# Installs the Debian packages nimbus needs to build, test and run. Idempotent and quiet when
# everything is already present. Usage: scripts/install-deps.sh [build|bench]
set -euo pipefail
build_pkgs=(build-essential cmake ninja-build pkg-config git zip unzip
  libboost1.81-dev libboost-json1.81-dev libyaml-cpp-dev libsqlite3-dev libarchive-dev
  libseccomp-dev libcap-dev libssl-dev libgtest-dev
  python3 nodejs npm
  # `make test` checks the threading annotations with clang's -Wthread-safety (the build is g++):
  clang
  # aws-lambda-ric (exercised by the tests) compiles a native addon with these:
  autoconf automake libtool libcurl4-openssl-dev)
bench_pkgs=(wrk nginx-light gnuplot-nox)

want=("${build_pkgs[@]}")
[ "${1:-build}" = bench ] && want+=("${bench_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node and npm may come from elsewhere than Debian (a newer Node.js); accept working binaries.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
read -ra missing <<<"${missing[*]:-}"
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
