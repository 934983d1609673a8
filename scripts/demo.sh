#!/usr/bin/env bash
# Main job on the embedded default: sets up ./.venv if needed, then compresses and reconstructs the
# bundled sample frames with every available codec and prints the table (outputs in out/demo/).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec .venv/bin/semcomp demo --out out/demo "$@"
