#!/usr/bin/env bash
# The main job: set up, then run the example ML pipelines end to end on the embedded defaults
# (SQLite metadata DB, local-folder artifact store, a SQLite file standing in for the warehouse)
# and show every artifact, check and metric they produced. Pass DAG ids to run only those.
set -euo pipefail
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
exit $status
