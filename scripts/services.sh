#!/usr/bin/env bash
# Makes the services the pipeline tests need available on this machine, installing what is missing:
# - PostgreSQL at 127.0.0.1:5432 (started when a local cluster exists but is down);
# - tansu, the Kafka-protocol broker installable from crates.io (tests start their own instances).
# Source it (`. scripts/services.sh`) so that PATH includes cargo's bin folder afterwards.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"

# The tansu build the project checked (in-memory storage needs the dynostore feature).
TANSU_VERSION=0.6.0
if ! command -v tansu >/dev/null 2>&1; then
  echo "services: installing tansu $TANSU_VERSION from crates.io (about 15 minutes on 2 cores)…" >&2
  cargo install tansu --version "$TANSU_VERSION" --locked --features "dynostore postgres" >&2
fi

if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "services: starting PostgreSQL…" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start >&2
  fi
fi
if ! pg_isready -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then
  echo "services: PostgreSQL is not reachable at 127.0.0.1:5432; the pipeline tests need it" >&2
  exit 2
fi
