#!/usr/bin/env bash
# Builds and installs pgvector for the machine's PostgreSQL 15 from Debian's
# source package (pgvector is not packaged for PG 15 in bookworm). Safe to run
# twice: it does nothing when the extension is already installed.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
sharedir=$("$PG_CONFIG" --sharedir 2>/dev/null || echo /usr/share/postgresql/15)
if [[ -f "$sharedir/extension/vector.control" ]]; then
  echo "pgvector already installed in $sharedir/extension"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
list=/etc/apt/sources.list.d/bitnexus-trixie-src.list
if [[ ! -f "$list" ]]; then
  echo 'deb-src http://deb.debian.org/debian trixie main' >"$list"
fi
apt-get update -qq
apt-get install -y -qq postgresql-server-dev-15 build-essential >/dev/null
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
sharedir=$("$PG_CONFIG" --sharedir)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
apt-get source --download-only pgvector >/dev/null
tar xzf pgvector_*.orig.tar.gz
cd "$(find . -maxdepth 1 -type d -name 'pgvector*' | head -n1)"
make PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make PG_CONFIG="$PG_CONFIG" install >/dev/null
echo "pgvector installed into $sharedir/extension"
