"""Print the XCom rows of a DAG's latest run, and where its artifacts are (used by run-example.sh)."""

from __future__ import annotations

import sys


def main(dag_id: str) -> int:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_mlops_provider.artifacts import codec
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.records import CHECK_KEY, METRICS_KEY, TASK_KEY

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        if run is None:
            print(f"No run of {dag_id} found.")
            return 1
        rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        print(f"\n{dag_id} run {run.run_id}: {run.state}\n")
        for row in sorted(rows, key=lambda r: (r.task_id, r.map_index, r.key)):
            value = row.value
            name = row.task_id + (f"[{row.map_index}]" if row.map_index >= 0 else "")
            if row.key == CHECK_KEY:
                shown = f"check {value['status'].upper()} ({value['severity']}): {value['message']}"
            elif row.key == METRICS_KEY:
                shown = "metrics " + ", ".join(
                    f"{m['name']}={m['value']:.4g} [{m['status']}]" for m in value["metrics"]
                )
            elif row.key == TASK_KEY:
                continue
            elif isinstance(value, dict) and value.get("__mlops__") == "artifact":
                shown = f"{value['summary']}\n      {value['uri']}"
            elif any(True for _ in codec.iter_references(value)):
                parts = [ref["summary"] for _, ref in codec.iter_references(value)]
                shown = f"inline container of {len(parts)} artifact(s): " + "; ".join(parts)
            else:
                shown = f"inline: {value!r:.100}"
            print(f"  {name}.{row.key}: {shown}")
    print(f"\nArtifact store: {ArtifactSettings.from_airflow_config().artifact_root}\n")
    return 0 if run.state == "success" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "example_typed_artifacts"))
