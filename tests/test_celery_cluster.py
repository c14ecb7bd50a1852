"""Scale-out on Airflow's CeleryExecutor: the provider where teams outgrow one machine.

One cluster for the module, as a small scaled-out deployment runs: PostgreSQL metadata DB (also
Celery's result backend), Redis on 127.0.0.1:6379 as the broker, ``airflow scheduler``,
``dag-processor``, ``api-server`` and two ``airflow celery worker`` processes with their own
hostnames, homes and DAG copies. No local disk is shared between the workers: artifacts go to
moto's S3 server through a relay that can cut the store off (tests/relay.py), and task logs to
another bucket (remote logging), read back through Airflow's REST API.

The tests run in file order on the same cluster; the last one kills a worker for good.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from cluster import AirflowCluster, require_postgres
from conftest import TESTS_DIR
from relay import Relay

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import S3Server

DAGS = TESTS_DIR / "dags"
FANOUT = "mlops_celery_fanout"
BIG = "mlops_celery_big"
SHARDS = 500
STORE_TIMEOUT = 5  # [mlops] store_timeout_seconds on every component
WORKERS = ("worker-a", "worker-b")
CELERY_CONFIG = "airflow_mlops_provider.celery_config.CELERY_CONFIG"
GC_GRACE_SECONDS = 60  # gc's --grace while the fan-out writes


def require_redis() -> None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"needs Redis at 127.0.0.1:6379 as the Celery broker ({error})")


@pytest.fixture(scope="module")
def relay(s3_server: S3Server) -> Iterator[Relay]:
    with Relay(s3_server.port) as started:
        yield started


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    name = f"celery-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=name)
    s3_server.client().create_bucket(Bucket=f"{name}-logs")
    return name


@pytest.fixture(scope="module")
def cluster(s3_server: S3Server, relay: Relay, bucket: str) -> Iterator[AirflowCluster]:
    require_postgres()
    require_redis()
    through_relay = json.loads(s3_server.connection_uri())
    through_relay["extra"]["endpoint_url"] = relay.url
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(through_relay),  # artifacts: through the relay
        "AIRFLOW_CONN_S3_LOGS": s3_server.connection_uri(),  # task logs: straight to the server
        "AIRFLOW__MLOPS__STORE_TIMEOUT_SECONDS": str(STORE_TIMEOUT),
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG,  # as docs/deployment.md advises
    }
    with AirflowCluster(
        [DAGS / f"{FANOUT}.py", DAGS / f"{BIG}.py"],
        executor="CeleryExecutor",
        celery_workers=WORKERS,
        worker_concurrency=3,
        parallelism=6,
        artifact_root=f"s3://{bucket}/artifacts",
        remote_logs=(f"s3://{bucket}-logs/logs", "s3_logs"),
        env=env,
    ) as started:
        print(f"celery cluster started in {started.startup_seconds:.1f} s: {started.timings}")
        yield started


def _tries(cluster: AirflowCluster, dag_id: str, run_id: str, task: str, map_index: int = -1) -> list[dict]:
    """Every try of a task instance, oldest first (state, hostname, duration of each)."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task}"
    path += "/tries" if map_index == -1 else f"/{map_index}/tries"
    return sorted(cluster.api("GET", path)["task_instances"], key=lambda t: t["try_number"])


def _xcom(cluster: AirflowCluster, dag_id: str, run_id: str, task_id: str) -> Any:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    return cluster.api("GET", path)["value"]


def _open_uploads(s3_server: S3Server, bucket: str, prefix: str) -> list[dict]:
    return s3_server.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])


def _keys(s3_server: S3Server, bucket: str, prefix: str) -> list[str]:
    pages = s3_server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def test_fan_out_of_500_frames_is_exact_on_two_workers_while_gc_runs(
    cluster: AirflowCluster, s3_server: S3Server, bucket: str
) -> None:
    run_id = cluster.trigger_rest(FANOUT, {"shards": SHARDS})

    # `airflow mlops gc` (as an operator would run it, from any machine with the CLI) while the
    # mapped tasks write: it must delete nothing that a task or a row still needs.
    def succeeded() -> int:
        tis = cluster.task_instances(FANOUT, run_id)
        return sum(t["state"] == "success" for t in tis if t["task_id"] == "make")

    cluster.poll("a mapped task to succeed", lambda: succeeded() >= 1, 900, 1)
    first_done = time.monotonic()
    cluster.poll("a tenth of the mapped tasks to succeed", lambda: succeeded() >= SHARDS // 10, 900, 2)
    # Let the first folders age past the grace period, so that gc judges them by their XCom rows.
    time.sleep(max(0.0, first_done + GC_GRACE_SECONDS + 5 - time.monotonic()))
    written = succeeded()
    gc = cluster.cli("mlops", "gc", "--grace", f"{GC_GRACE_SECONDS}s", "--output", "json", timeout=600)
    report = json.loads(gc.stdout)
    assert cluster.run(FANOUT, run_id)["state"] == "running", "gc must run while the DAG runs"

    assert cluster.wait_for_run(FANOUT, run_id, timeout=2400) == "success"
    # The reduce compared each of the 500 frames with the frame its shard must produce (values,
    # dtypes, categories, timezone and index frequency) and counted distinct ones.
    assert _xcom(cluster, FANOUT, run_id, "reduce") == {
        "frames": SHARDS,
        "distinct": SHARDS,
        "rows": SHARDS * 200,
        "changed": [],
    }
    tis = [t for t in cluster.task_instances(FANOUT, run_id) if t["task_id"] == "make"]
    assert len(tis) == SHARDS
    assert all(t["state"] == "success" and t["try_number"] == 1 for t in tis)
    by_worker = Counter(t["hostname"] for t in tis)
    assert set(by_worker) == set(WORKERS), by_worker  # both workers took a share, through the store
    assert min(by_worker.values()) >= SHARDS // 10, by_worker

    assert report["deleted"]["folders"] == 0, f"gc deleted while the run was writing: {report['deleted']}"
    # Every finished task's folder was kept: younger than the grace period, or judged by its row.
    kept = report["kept_referenced"]["folders"], report["kept_young"]["folders"]
    assert sum(kept) >= written and kept[0] >= 1, kept
    # Every mapped task's artifact is in the store once (one write folder per task).
    folders = {
        key.split("/key=return_value/")[0]
        for key in _keys(s3_server, bucket, f"artifacts/dag_id={FANOUT}/")
        if "/task_id=make/" in key
    }
    assert len(folders) == SHARDS


def test_store_outage_fails_tries_with_a_clear_error_and_retries_succeed(
    cluster: AirflowCluster, relay: Relay, bucket: str
) -> None:
    run_id = cluster.trigger_rest(FANOUT, {"shards": 12})
    cluster.poll(
        "the first mapped task to start",
        lambda: any(
            t["task_id"] == "make" and t["state"] in ("running", "success")
            for t in cluster.task_instances(FANOUT, run_id)
        ),
        timeout=300,
        interval=0.5,
    )
    relay.down()
    try:
        time.sleep(30)
    finally:
        relay.up()
    assert relay.held, "no connection reached the store while it was down: the outage tested nothing"
    assert cluster.wait_for_run(FANOUT, run_id, timeout=900) == "success"
    assert _xcom(cluster, FANOUT, run_id, "reduce")["changed"] == []

    failed: list[tuple[dict, dict]] = []
    for ti in cluster.task_instances(FANOUT, run_id):
        if ti["try_number"] > 1:
            tries = _tries(cluster, FANOUT, run_id, ti["task_id"], ti["map_index"])
            failed += [(ti, t) for t in tries if t["state"] in ("failed", "up_for_retry")]
    assert failed, "no try failed during a 30 s store outage"
    bound = 3 * STORE_TIMEOUT * 3 + 30  # attempts x timeout per request, a few requests, start-up
    for _, attempt in failed:
        assert attempt["duration"] is not None and attempt["duration"] < bound, attempt
    ti, attempt = failed[0]
    log = cluster.task_log(FANOUT, run_id, ti["task_id"], attempt["try_number"], ti["map_index"])
    assert "ArtifactStoreError" in log, log[-3000:]
    assert f"s3://{bucket}/artifacts" in log and "aws_default" in log, log[-3000:]


def test_worker_killed_mid_upload_retry_on_the_other_worker_leaves_nothing_partial(
    cluster: AirflowCluster, s3_server: S3Server, bucket: str
) -> None:
    prefix = f"artifacts/dag_id={BIG}/"
    run_id = cluster.trigger_rest(BIG)

    def uploading() -> list[dict]:
        client = s3_server.client()
        return [
            u
            for u in _open_uploads(s3_server, bucket, prefix)
            if client.list_parts(Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"]).get("Parts")
        ]

    uploads = cluster.poll("the 200 MB frame's multipart upload to have parts", uploading, 600, 0.1)
    first = _tries(cluster, BIG, run_id, "big")[0]
    victim = first["hostname"]
    assert victim in WORKERS, first
    cluster.kill_worker(victim)
    assert "/try=1-" in uploads[0]["Key"]
    # Killed mid-upload: nothing of the try is readable, and no XCom row points anywhere.
    assert not [k for k in _keys(s3_server, bucket, prefix) if "/task_id=big/" in k]

    assert cluster.wait_for_run(BIG, run_id, timeout=900) == "success"
    tries = _tries(cluster, BIG, run_id, "big")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")], tries
    assert tries[1]["hostname"] not in (victim, None), tries
    assert _xcom(cluster, BIG, run_id, "check") == {"rows": 25_000_000}  # the check compared exactly

    keys = [k for k in _keys(s3_server, bucket, prefix) if "/task_id=big/" in k]
    assert keys and all("/try=2-" in k for k in keys), keys
    assert _open_uploads(s3_server, bucket, prefix) == [], "the killed try's multipart upload is still open"
