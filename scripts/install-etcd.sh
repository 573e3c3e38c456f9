#!/usr/bin/env bash
# Installs etcd 3.4 from Debian's packages (etcd-server), for `npm run
# bench:etcd` and `npm run bench -- --etcd`: the issue's performance target is
# stated against etcd 3.4 on the same machine. Not needed by the tests or CI.
# Safe to run twice. The package starts a system etcd on 2379 where systemd
# runs; the benchmark starts its own members on 27370-27382, and this script
# stops and disables the system one so it does not take CPU from the runs.
set -euo pipefail

if command -v etcd >/dev/null 2>&1; then
  echo "etcd already installed: $(etcd --version | head -n1)"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq etcd-server >/dev/null
  echo "installed $(etcd --version | head -n1)"
fi
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
  systemctl disable --now etcd >/dev/null 2>&1 || true
fi
