#!/usr/bin/env bash
# Run the core test suite (artifacts, serializers, layout, checks, catalog, decorators through DAG
# runs; `--full` adds previews, dedup, DAG integration, the UI API and the CLI) against other Airflow
# releases than the main venv's, each in its own venv with pinned versions. dev/run-tests.sh runs
# the 3.1 and 3.2 legs after the main suite (MLOPS_SKIP_MATRIX=1 skips them):
#
#   bash dev/run-matrix.sh 3.1      # oldest supported minor: .venv-airflow-3.1, dev/constraints-airflow-3.1.txt
#   bash dev/run-matrix.sh 3.2      # .venv-airflow-3.2, dev/constraints-airflow-3.2.txt
#   bash dev/run-matrix.sh 3.3      # the main venv (.venv, dev/constraints.txt, via dev/bootstrap.sh)
#   bash dev/run-matrix.sh all      # 3.1, 3.2 and 3.3, one after the other (the default)
#
# Extra arguments go to pytest (e.g. `-x`, `-k roundtrip`; test paths replace the core modules). A
# venv is created and installed only when missing or when its constraints file or setup.cfg changed;
# versions and times: docs/compatibility.md.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
WHICH="${1:-all}"
[ $# -gt 0 ] && shift

# The core modules: every layer the provider has on each Airflow (artifacts, serializers, layout,
# checks, the catalog, and decorators through real DAG runs). `--full` adds the heavier modules.
MODULES=(  # globs expand relative to the repository root
  tests/test_artifacts.py
  tests/test_exact_roundtrip.py
  tests/test_roundtrip_properties.py
  tests/test_serializer_capabilities.py
  tests/test_serializer_registry.py
  tests/test_layout.py
  tests/test_structure_previews.py
  tests/test_catalog_records.py
  tests/test_catalog_status.py
  tests/test_builtin_checks.py
  tests/test_task_namespace.py
  tests/test_cache.py::test_a_rerun_with_nothing_changed_reuses_every_output  # cache hits, unloaded inputs
  tests/test_warm_up.py  # the S3 client made at a task's start only where the Task SDK allows it
)
FULL_MODULES=(
  tests/test_serializer_previews.py
  tests/test_dedup.py
  tests/test_dag_integration.py
  tests/test_ui_api.py
  tests/test_catalog_artifacts.py
  tests/test_cli.py
)

install_venv() {  # install_venv VERSION -> prints the venv's python
  local version="$1" venv="$ROOT/.venv-airflow-$1" constraints="$ROOT/dev/constraints-airflow-$1.txt"
  [ -f "$constraints" ] || { echo "no $constraints" >&2; exit 2; }
  if [ ! -x "$venv/bin/python" ]; then
    echo ">> creating $venv" >&2
    "$PYTHON" -m venv "$venv"
  fi
  local stamp="$venv/.mlops-installed" want
  want="$(cat "$constraints" "$ROOT/setup.cfg" | sha256sum | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo ">> installing airflow-mlops-provider with $(grep -m1 '^apache-airflow==' "$constraints")" >&2
    local start=$SECONDS
    "$venv/bin/python" -m pip install -q --upgrade "pip>=24" >&2
    "$venv/bin/python" -m pip install -q -c "$constraints" -e "$ROOT[test]" >&2
    echo "$want" > "$stamp"
    echo ">> installed in $((SECONDS - start)) s" >&2
  fi
  echo "$venv/bin/python"
}

run_version() {  # run_version VERSION [pytest args...]
  local version="$1" python
  shift
  if [ "$version" = 3.3 ]; then
    python="$( (source "$ROOT/dev/bootstrap.sh" >&2 && command -v python))"
  else
    python="$(install_venv "$version")"
  fi
  echo ">> Airflow $("$python" -c 'from importlib.metadata import version; print(version("apache-airflow"))')" \
    "(Python $("$python" -c 'import platform; print(platform.python_version())'))"
  local start=$SECONDS status=0 tests=("${MODULES[@]}") args=() arg
  for arg in "$@"; do
    case "$arg" in
      --full) tests+=("${FULL_MODULES[@]}") ;;
      tests/* | tests) tests=() ; args+=("$arg") ;;  # test paths given: run those instead
      *) args+=("$arg") ;;
    esac
  done
  # The venv's bin/ first: the tests run `airflow` (db migrate, CLI) from it.
  (cd "$ROOT" && PATH="$(dirname "$python"):$PATH" "$python" -m pytest -q -p no:cacheprovider "${tests[@]}" "${args[@]}") \
    || status=$?
  echo ">> Airflow $version: pytest exited $status after $((SECONDS - start)) s"
  return "$status"
}

case "$WHICH" in
  3.1 | 3.2 | 3.3) run_version "$WHICH" "$@" ;;
  all)
    failed=()
    for version in 3.1 3.2 3.3; do
      run_version "$version" "$@" || failed+=("$version")
    done
    if [ ${#failed[@]} -gt 0 ]; then
      echo ">> failed on Airflow ${failed[*]}"
      exit 1
    fi
    ;;
  *)
    echo "usage: bash dev/run-matrix.sh [3.1|3.2|3.3|all] [pytest args...]" >&2
    exit 2
    ;;
esac
