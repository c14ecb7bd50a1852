"""Benchmark: large artifacts on an object store with per-connection limits, as real S3 behaves.

One S3 connection gives about 50-100 MB/s; clients get more with parallel multipart uploads and
parallel ranged GETs. moto's server is local and has no such limit (and copies the whole object for
every ranged GET), so this puts a TCP relay on 127.0.0.1 in front of it (tests/relay.py) that caps
each connection's bandwidth and delays each request, and measures through it::

    .venv/bin/python dev/bench_s3_parallel.py                       # 256 MB table, 20 MB/s, 20 ms
    .venv/bin/python dev/bench_s3_parallel.py --mb 1024 --cap 50    # the issue's 1 GB at 50 MB/s
    .venv/bin/python dev/bench_s3_parallel.py --json out.json

It reports, for a table of ``--mb`` MB of incompressible float64 columns (10 columns):

* single stream: one ``put_object`` / ``get_object`` of ``--single-mb`` MB on one connection (boto3),
  as MB/s, the rate a client without parallelism gets through the relay;
* the provider's write (``ArtifactManager.dump``) and full read (``load``) of the table, as MB/s and
  as a multiple of the single-stream rate, with the relay's request count and the most requests in
  flight at once;
* a 1-of-10-column read (``ArtifactRef.load(columns=...)``): bytes fetched against the object's
  size, requests, and requests in flight at once.

Everything runs on 127.0.0.1 and is bounded: the relay forwards only to the local moto server, the
data is generated here, and the bucket lives in moto's memory for the length of the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "dev"))

from bench_xcom import MotoServer, git_state, machine_info  # noqa: E402
from relay import Relay  # noqa: E402

MB = 1_000_000
BUCKET = "bench-parallel"


def _table(megabytes: int) -> Any:
    import numpy as np
    import pyarrow as pa

    rows = megabytes * MB // (10 * 8)
    rng = np.random.default_rng(5)
    return pa.table({f"c{i}": rng.standard_normal(rows) for i in range(10)})


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def single_stream(relay: Relay, megabytes: int) -> dict[str, float]:
    client = _client(relay.url)
    body = os.urandom(megabytes * MB)
    start = time.perf_counter()
    client.put_object(Bucket=BUCKET, Key="single", Body=body)
    put = time.perf_counter() - start
    start = time.perf_counter()
    got = client.get_object(Bucket=BUCKET, Key="single")["Body"].read()
    get = time.perf_counter() - start
    assert got == body
    client.delete_object(Bucket=BUCKET, Key="single")
    return {"put_mb_s": megabytes / put, "get_mb_s": megabytes / get}


def provider(relay: Relay, megabytes: int) -> dict[str, Any]:
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manager import ArtifactManager
    from airflow_mlops_provider.artifacts.manifest import Producer

    manager = ArtifactManager(ArtifactSettings(f"s3://{BUCKET}/mlops", conn_id="aws_default"))
    table = _table(megabytes)
    results: dict[str, Any] = {}

    relay.reset_counters()
    start = time.perf_counter()
    row = manager.dump(table, Producer("bench", "run", "big", -1, "return_value", 1))
    seconds = time.perf_counter() - start
    size = row["size_bytes"]
    results["write"] = {"seconds": seconds, "mb_s": size / MB / seconds, **_counters(relay)}
    results["size_mb"] = size / MB

    relay.reset_counters()
    start = time.perf_counter()
    back = manager.load(row)
    seconds = time.perf_counter() - start
    assert back.equals(table)
    del back
    results["read"] = {"seconds": seconds, "mb_s": size / MB / seconds, **_counters(relay)}

    ref = manager.load_lazy(row)
    relay.reset_counters()
    start = time.perf_counter()
    column = ref.load(columns=["c3"])
    seconds = time.perf_counter() - start
    assert column.column("c3").equals(table.column("c3"))
    counters = _counters(relay)
    results["one_column"] = {
        "seconds": seconds,
        "fetched_share": counters["bytes_down"] / size,
        **counters,
    }
    manager.purge(row)
    return results


def _counters(relay: Relay) -> dict[str, int]:
    return {
        "requests": relay.requests,
        "peak_in_flight": relay.peak_busy,
        "bytes_up": relay.bytes_up,
        "bytes_down": relay.bytes_down,
    }


def render(report: dict[str, Any]) -> str:
    single, mine = report["single_stream"], report["provider"]
    lines = [
        f"Relay: {report['cap_mb_s']} MB/s per connection, {report['latency_ms']} ms per request; "
        f"table {mine['size_mb']:.0f} MB.",
        "",
        "| operation | seconds | MB/s | x single stream | requests | most in flight |",
        "|---|---:|---:|---:|---:|---:|",
        f"| single-stream PUT ({report['single_mb']} MB) | | {single['put_mb_s']:.1f} | 1.0 | 1 | 1 |",
        f"| single-stream GET ({report['single_mb']} MB) | | {single['get_mb_s']:.1f} | 1.0 | 1 | 1 |",
    ]
    for name, base in (("write", "put_mb_s"), ("read", "get_mb_s")):
        r = mine[name]
        lines.append(
            f"| provider {name} | {r['seconds']:.1f} | {r['mb_s']:.1f} | {r['mb_s'] / single[base]:.1f} | "
            f"{r['requests']} | {r['peak_in_flight']} |"
        )
    one = mine["one_column"]
    lines += [
        "",
        f"1-of-10-column read: {one['seconds']:.2f} s, fetched {one['bytes_down'] / MB:.1f} MB "
        f"({one['fetched_share']:.0%} of the object) in {one['requests']} requests, at most "
        f"{one['peak_in_flight']} in flight at once.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the table (MB of float64)")
    parser.add_argument("--single-mb", type=int, default=64, help="size of the single-stream object")
    parser.add_argument("--cap", type=float, default=20.0, help="MB/s per connection and direction")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added to each request")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-s3-parallel-"))
    moto = MotoServer(workdir / "moto.log")
    try:
        moto.wait_ready()
        moto.create_bucket(BUCKET)
        with Relay(moto.port, bytes_per_second=args.cap * MB, latency=args.latency_ms / 1000) as relay:
            os.environ.update(
                AIRFLOW_HOME=str(workdir / "home"),
                AWS_EC2_METADATA_DISABLED="true",
                AIRFLOW_CONN_AWS_DEFAULT=json.dumps(
                    {
                        "conn_type": "aws",
                        "login": "testing",
                        "password": "testing",
                        "extra": {"endpoint_url": relay.url, "region_name": "us-east-1"},
                    }
                ),
            )
            report = {
                "command": " ".join(["dev/bench_s3_parallel.py", *(argv or sys.argv[1:])]),
                "git": git_state(),
                "machine": machine_info(),
                "load_average_before": os.getloadavg(),
                "cap_mb_s": args.cap,
                "latency_ms": args.latency_ms,
                "single_mb": args.single_mb,
                "single_stream": single_stream(relay, args.single_mb),
                "provider": provider(relay, args.mb),
                "load_average_after": os.getloadavg(),
            }
    finally:
        moto.stop()
    out = args.json or Path(tempfile.gettempdir()) / "bench_s3_parallel.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"commit {report['git']['commit']}; JSON: {out}\n")
    print(render(report))


if __name__ == "__main__":
    main()
