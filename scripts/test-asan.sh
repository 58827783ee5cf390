#!/usr/bin/env bash
# Usage: scripts/test-asan.sh [swift test options]
# Builds the pooler with AddressSanitizer (own scratch path) and runs the integration
# tests against that binary: any use-after-free, overflow or leak aborts the pooler
# process and fails the test that drove it. Not part of CI (it doubles the build).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --product pooler --scratch-path .build-asan -Xswiftc -sanitize=address >&2
POOLER_BIN=$(pwd)/.build-asan/debug/pooler exec swift test --filter IntegrationTests "$@"
