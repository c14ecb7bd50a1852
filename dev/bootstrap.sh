#!/usr/bin/env bash
# Create .venv (if needed) and install the provider with the pinned versions the tests use.
# Sourced by dev/run-example.sh and dev/run-tests.sh; safe to run again (it only installs what changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${MLOPS_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  echo ">> creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.mlops-installed"
WANT="$(cat "$ROOT/dev/constraints.txt" "$ROOT/setup.cfg" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo ">> installing airflow-mlops-provider and pinned dependencies (about 2 minutes the first time)"
  "$VENV/bin/python" -m pip install -q --upgrade "pip>=24"
  "$VENV/bin/python" -m pip install -q -c "$ROOT/dev/constraints.txt" -e "$ROOT[test,examples]"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
