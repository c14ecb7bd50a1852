#!/usr/bin/env bash
# Set up, then run the whole test suite (lint included). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/dev/bootstrap.sh"
cd "$ROOT"
# The machine's PostgreSQL serves the metadata-DB tests; start it if it is installed but stopped.
if command -v pg_ctlcluster > /dev/null && ! pg_isready -h 127.0.0.1 -q 2> /dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
# The browser tests drive Debian's Chromium through Playwright (browsers cannot be downloaded here).
if [ ! -x "${MLOPS_CHROMIUM:-/usr/bin/chromium}" ] && command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
  echo ">> installing Chromium for the browser tests"
  (apt-get update -qq && apt-get install -y -qq chromium) > /tmp/mlops-apt.log 2>&1 \
    || echo "   could not install chromium (see /tmp/mlops-apt.log): the browser tests will be skipped"
fi
echo ">> ruff"
ruff check airflow_mlops_provider tests dev
ruff format --check airflow_mlops_provider tests dev
echo ">> pytest"
python -m pytest "$@"
