#!/usr/bin/env bash
# The main job: set up, then run the example ML pipelines end to end on the embedded defaults
# (SQLite metadata DB, local-folder artifact store, a SQLite file standing in for the warehouse)
# and show every artifact, check and metric they produced. Pass DAG ids to run only those.
# With --ui it then serves Airflow's UI on this Airflow home (api-server, scheduler, dag-processor)
# and prints the URL and login of the ML view; Ctrl-C stops it.
set -euo pipefail
UI=0
ARGS=()
for arg in "$@"; do
  if [ "$arg" = "--ui" ]; then UI=1; else ARGS+=("$arg"); fi
done
set -- ${ARGS[@]+"${ARGS[@]}"}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/dev/bootstrap.sh"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/.airflow-home}"
mkdir -p "$AIRFLOW_HOME"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/airflow_mlops_provider/example_dags"
export AIRFLOW__CORE__XCOM_BACKEND=airflow_mlops_provider.xcom.ArtifactXComBackend
export AIRFLOW__LOGGING__LOGGING_LEVEL="${AIRFLOW__LOGGING__LOGGING_LEVEL:-WARNING}"
export AIRFLOW_CONN_WAREHOUSE="${AIRFLOW_CONN_WAREHOUSE:-sqlite:///${AIRFLOW_HOME#/}/warehouse.db}"
DAG_IDS=("$@")
[ ${#DAG_IDS[@]} -gt 0 ] || DAG_IDS=(example_typed_artifacts example_customer_predictions example_churn_training)
echo ">> migrating the metadata DB in $AIRFLOW_HOME"
airflow db migrate > "$AIRFLOW_HOME/migrate.log" 2>&1 || { cat "$AIRFLOW_HOME/migrate.log"; exit 1; }
echo ">> filling the sample warehouse ($AIRFLOW_CONN_WAREHOUSE)"
python "$ROOT/dev/seed_warehouse.py" "$AIRFLOW_HOME/warehouse.db"
status=0
for dag_id in "${DAG_IDS[@]}"; do
  echo ">> running $dag_id"
  if ! airflow dags test "$dag_id" > "$AIRFLOW_HOME/$dag_id.log" 2>&1; then
    tail -40 "$AIRFLOW_HOME/$dag_id.log"
    status=1
  fi
  python "$ROOT/dev/show_run.py" "$dag_id" || status=1
done
[ "$UI" = 1 ] || exit $status

# -- the UI: Airflow's own, with the ML view, on the runs made above ---------------------------------
PORT="${MLOPS_UI_PORT:-8080}"
export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/ui-passwords.json"
[ -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ] \
  || echo '{"admin": "admin"}' > "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
export AIRFLOW__API_AUTH__JWT_SECRET="${AIRFLOW__API_AUTH__JWT_SECRET:-mlops-example-$(hostname)}"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
PIDS=()
stop() { for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -- "-$pid" 2> /dev/null || true; done; }
trap stop EXIT INT TERM
for component in "api-server --host 127.0.0.1 --port $PORT" scheduler dag-processor; do
  name="${component%% *}"
  # shellcheck disable=SC2086  # the component's arguments are meant to split
  setsid airflow $component > "$AIRFLOW_HOME/$name.log" 2>&1 &
  PIDS+=("$!")
done
for _ in $(seq 120); do
  python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/api/v2/monitor/health', timeout=2)" \
    2> /dev/null && break
  sleep 1
done
python -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/api/v2/monitor/health', timeout=5)" \
  2> /dev/null || { tail -30 "$AIRFLOW_HOME/api-server.log"; exit 1; }
cat << EOF

Airflow UI with the ML view: http://127.0.0.1:$PORT/   (login: admin / admin)
  ML overview:  Plugins > ML in the left menu
  One run:      open a DAG, click a run, then its "ML" tab (a task: click it, then its "ML" tab)
Logs of the three components are in $AIRFLOW_HOME. Press Ctrl-C to stop.
EOF
wait
