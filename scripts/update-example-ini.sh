#!/usr/bin/env bash
# Regenerates pooler.ini.example from the config key table (ConfigDocs.exampleIni()).
set -euo pipefail
cd "$(dirname "$0")/.."
POOLER_UPDATE_EXAMPLE=1 swift test --filter PoolerConfigTests.ExampleIniTests
