#!/usr/bin/env bash
# Run every test of trent. Release mode on purpose: the same compiled dependencies serve
# `cargo run --release` and the tests, which halves a cold build on a small machine.
#
# Set-up the tests need beyond Rust, done here so a fresh machine needs nothing else:
# - PostgreSQL server binaries (Debian package `postgresql`): the shared care record is
#   tested on PostgreSQL as well as SQLite; each test starts its own throwaway cluster.
# - schemathesis (PyPI, in a venv under ~/.cache): the OpenAPI-driven fuzzer run against
#   a live `trent serve` by crates/trent/tests/record_fuzz.rs.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/trent-target}"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "test.sh: installing PostgreSQL (Debian package postgresql) for the record store tests" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi

SCHEMATHESIS_VERSION=4.32.5
VENV="$HOME/.cache/trent-test-venv"
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION"; then
    echo "test.sh: installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
export TRENT_SCHEMATHESIS="$VENV/bin/schemathesis"
# tools above are present: tests that need them fail rather than skip
export TRENT_REQUIRE_TOOLS=1

cargo test --release --workspace "$@"
