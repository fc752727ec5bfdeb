#!/usr/bin/env bash
# Makes the services the pipeline tests need available on this machine, installing what is missing:
# - PostgreSQL at 127.0.0.1:5432: started when a local cluster exists but is down; on a machine without
#   one, Debian's `postgresql` is installed and a cluster with trust authentication created (root or
#   sudo needed), and the database `test` created when missing;
# - tansu, the Kafka-protocol broker installable from crates.io (tests start their own instances);
# - chromium, Debian's browser, which the dashboard's tests drive headless (root or sudo needed).
# Source it (`. scripts/services.sh`) so that PATH includes cargo's bin folder afterwards.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"

# The tansu build the project checked (in-memory storage needs the dynostore feature).
TANSU_VERSION=0.6.0
if ! command -v tansu >/dev/null 2>&1; then
  echo "services: installing tansu $TANSU_VERSION from crates.io (about 15 minutes on 2 cores)…" >&2
  cargo install tansu --version "$TANSU_VERSION" --locked --features "dynostore postgres" >&2
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The dashboard's browser tests (tests/support/browser.rs) drive Debian's chromium.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  echo "services: installing chromium (Debian's package) for the dashboard's browser tests…" >&2
  as_root apt-get update >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2
fi

# PostgreSQL: user `postgres`, trust authentication on 127.0.0.1:5432, database `test`.
pg_ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
if ! pg_ready; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    # A fresh machine: Debian's server. Its package creates a cluster with password authentication;
    # that one is replaced below by a cluster the tests can reach without a password.
    echo "services: installing PostgreSQL (Debian's postgresql package)…" >&2
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    for version in $(ls /etc/postgresql 2>/dev/null); do
      as_root pg_dropcluster --stop "$version" main >&2 || true
    done
  fi
  if [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
    echo "services: creating a PostgreSQL $version cluster on port 5432 (trust authentication, local only)…" >&2
    as_root pg_createcluster --port 5432 "$version" main -- --auth-local=trust --auth-host=trust >&2
  fi
  echo "services: starting PostgreSQL…" >&2
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -n | tail -n 1)" main start >&2 || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
if ! pg_ready; then
  echo "services: PostgreSQL is not reachable at 127.0.0.1:5432; the pipeline tests need it" >&2
  exit 2
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  echo "services: creating the database \`test\`…" >&2
  psql -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE test" >&2
fi
