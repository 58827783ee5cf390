#!/usr/bin/env bash
# Usage: scripts/test.sh [swift test options...]
# The project's test command: builds everything (including the `pooler`
# binary the integration tests start) and runs all test targets; exits with
# the status of `swift test`.
# Integration tests need PostgreSQL 15 (/usr/lib/postgresql/15/bin, or PG_BIN)
# and psql/pgbench; as root they run Postgres as the `postgres` OS user
# (created if missing). Env: POOLER_BIN, POOLER_RUN_AS, POOLER_KEEP_TMP=1 (see
# Tests/IntegrationTests/Support/TestEnvironment.swift).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh

# 200 concurrent clients plus poolers and Postgres: raise the soft fd limit.
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 65536 ]; then hard=65536; fi
ulimit -n "$hard" 2>/dev/null || true

exec swift test "$@"
