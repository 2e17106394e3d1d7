#!/usr/bin/env bash
# Installs what the tests need (a virtualenv with the project, Synapse and the linters),
# makes sure PostgreSQL runs, then runs the checks and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e '.[test]'

# The integration tests need PostgreSQL at 127.0.0.1:5432 (BRIDGE_TEST_POSTGRES overrides).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    fi
    for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi

.venv/bin/ruff check bridge tests bench
.venv/bin/ruff format --check bridge tests bench
.venv/bin/mypy bridge
# matrix-js-sdk (the SDK inside Element) parses the bridge's poll events in a test.
if [ -f tests/js/package.json ]; then
    (cd tests/js && npm install --silent --no-audit --no-fund >/dev/null)
fi
exec .venv/bin/pytest "$@"
