#!/usr/bin/env bash
# GPU tests + benchmarks -> one JSON report ($OUT/gpu_report.json, or --out PATH).
# Usage: benchmarks/gpu_check.sh [--out report.json] [--allow-cpu] [--skip-tests]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
