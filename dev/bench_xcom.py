"""Benchmark: this provider's artifact layer vs Airflow's XComObjectStorageBackend vs raw Parquet.

Run it from the repository root with the project's virtualenv::

    .venv/bin/python dev/bench_xcom.py                 # full run: 10k + 1M rows, column reads, ~2 GB stream
    .venv/bin/python dev/bench_xcom.py --quick         # 10k rows only (no 1M, no 2 GB); about a minute
    .venv/bin/python dev/bench_xcom.py --no-s3         # local folder only (no moto server)
    .venv/bin/python dev/bench_xcom.py --json out.json # where to write the JSON results
    .venv/bin/python dev/bench_xcom.py --only roundtrip --repeats 7   # one part, steadier timings

What it measures, on the same DataFrames (10 columns: 6 float64, 3 string, 1 categorical):

* ``mlops``: :class:`~airflow_mlops_provider.artifacts.manager.ArtifactManager` ``dump`` / ``load``
  (Parquet + zstd + page checksums, sha256 verified on read, manifest beside the data);
* ``xcom-objectstorage``: ``XComObjectStorageBackend.serialize_value`` / ``deserialize_value`` from
  ``apache-airflow-providers-common-io`` with ``xcom_objectstorage_threshold = 0``;
* ``pyarrow``: ``pa.Table.from_pandas`` + ``pq.write_table(compression="zstd")`` and
  ``pq.read_table(...).to_pandas()``, the floor any Parquet-based layer can reach.

Each (backend, rows, store) runs in a fresh subprocess: the frame is built, the high-water mark of
the resident set is reset (``/proc/self/clear_refs``; ``ru_maxrss`` where that is unavailable) and
the peak RSS increase over that baseline is recorded for the write and the read of the first repeat.
Timings are the best of ``--repeats`` (3) warm repeats in that process. Stores: a local folder and
S3 served by moto's standalone server on 127.0.0.1 (started and stopped by this script). It also
times reading 1 of the 10 columns against a full read through ``ArtifactRef``, and writes a ~2 GB
artifact from a ``pyarrow.RecordBatchReader`` then streams it back with ``ArtifactRef.iter_batches``
in a fresh process (local store only: moto keeps objects in memory, so a 2 GB object would measure
moto rather than the provider). Everything is written under a temporary folder that is removed at
the end; the JSON results go to ``--json`` (a temporary file by default, never into the repository).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import math
import os
import platform
import posixpath
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pandas as pd
    import pyarrow as pa

REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench-xcom"
MB = 1_000_000
SEED = 20240601
N_FLOAT, N_STR = 6, 3
REGIONS = ["north", "south", "east", "west", "central", "north-east", "south-west", "islands"]
BACKENDS = ("mlops", "xcom-objectstorage", "pyarrow")
WORKER_TIMEOUT_S = 1200

# Targets, all evaluated at the largest frame (1M rows).
TARGET_SPEEDUP_VS_XCOM = 5.0
TARGET_BYTES_RATIO_VS_XCOM = 0.55
TARGET_SLOWDOWN_VS_PYARROW = 1.3
TARGET_COLUMN_SPEEDUP = 4.0
TARGET_STREAM_PEAK_RSS = 500 * MB


# ------------------------------------------------------------------------------------------------
# Memory probes
# ------------------------------------------------------------------------------------------------


def _proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss() -> int:
    """Resident set size now, in bytes."""
    kib = _proc_status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    import psutil

    return int(psutil.Process().memory_info().rss)


def peak_rss() -> int:
    """High-water mark of the resident set since start (or the last reset), in bytes."""
    kib = _proc_status_kib("VmHWM")
    if kib is not None:
        return kib * 1024
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024


def reset_peak_rss() -> bool:
    """Reset the RSS high-water mark to the current RSS (Linux >= 4.0); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


class MemoryProbe:
    """Peak RSS increase over the RSS at :meth:`start`."""

    def __init__(self) -> None:
        self.method = "VmHWM after clear_refs" if reset_peak_rss() else "ru_maxrss (not resettable)"
        self.base = 0

    def start(self) -> None:
        gc.collect()
        reset_peak_rss()
        self.base = current_rss()

    def increase(self) -> int:
        return max(0, peak_rss() - self.base)


# ------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------


class DataGenerator:
    """Deterministic batches of the benchmark schema.

    ``f0``-``f2``: standard normal floats (incompressible); ``f3``-``f5``: prices rounded to cents;
    ``s0``: user ids from 200k; ``s1``: SKUs from 5k; ``s2``: 16-hex-digit tokens from 1M;
    ``region``: categorical with 8 levels.
    """

    def __init__(self) -> None:
        import numpy as np
        import pyarrow as pa

        rng = np.random.default_rng(SEED)
        self.users = pa.array([f"user-{i:07d}" for i in range(200_000)], pa.large_string())
        self.skus = pa.array([f"sku-{i:05d}" for i in range(5_000)], pa.large_string())
        self.tokens = pa.array(
            [f"{x:016x}" for x in rng.integers(0, 2**63, size=1_000_000)], pa.large_string()
        )
        self.regions = pa.array(REGIONS, pa.large_string())

    def batch(self, rows: int, seed: int) -> pa.RecordBatch:
        import numpy as np
        import pyarrow as pa

        rng = np.random.default_rng([SEED, seed])
        arrays: list[pa.Array] = []
        names: list[str] = []
        for i in range(N_FLOAT):
            if i < N_FLOAT // 2:
                values = rng.standard_normal(rows)
            else:
                values = np.round(rng.uniform(0.0, 1000.0, rows), 2)
            arrays.append(pa.array(values, pa.float64()))
            names.append(f"f{i}")
        for i, pool in enumerate((self.users, self.skus, self.tokens)[:N_STR]):
            arrays.append(pool.take(pa.array(rng.integers(0, len(pool), rows))))
            names.append(f"s{i}")
        codes = pa.array(rng.integers(0, len(self.regions), rows).astype(np.int8))
        arrays.append(pa.DictionaryArray.from_arrays(codes, self.regions))
        names.append("region")
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def frame(self, rows: int) -> pd.DataFrame:
        import pyarrow as pa

        return pa.Table.from_batches([self.batch(rows, seed=0)]).to_pandas()


# ------------------------------------------------------------------------------------------------
# Worker side (runs in a fresh subprocess per measurement)
# ------------------------------------------------------------------------------------------------


def _store_url(spec: dict[str, Any], what: str) -> str:
    if spec["store"] == "s3":
        return f"s3://{BUCKET}/{what}"
    return Path(spec["workdir"], "store", what).as_uri()


def _manager(spec: dict[str, Any]) -> Any:
    from airflow_mlops_provider.artifacts.config import ArtifactSettings
    from airflow_mlops_provider.artifacts.manager import ArtifactManager

    conn_id = "aws_default" if spec["store"] == "s3" else None
    return ArtifactManager(ArtifactSettings(artifact_root=_store_url(spec, "mlops"), conn_id=conn_id))


def _producer(repeat: int) -> Any:
    from airflow_mlops_provider.artifacts.manifest import Producer

    return Producer("bench_dag", "run_1", "task", -1, "return_value", repeat + 1)


def _frames_equal(left: Any, right: Any) -> str | None:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(left, right)
    except AssertionError as err:
        return str(err).splitlines()[0][:300] if str(err) else "frames differ"
    return None


class _Backend:
    """One way of storing a DataFrame and reading it back."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def warm_up(self) -> None:
        """Import and connect before the memory baseline (not measured)."""

    def write(self, df: pd.DataFrame, repeat: int) -> Any:
        raise NotImplementedError

    def read(self, handle: Any) -> pd.DataFrame:
        raise NotImplementedError

    def stored_bytes(self, handle: Any) -> int:
        raise NotImplementedError

    def delete(self, handle: Any) -> None:
        raise NotImplementedError


class _MlopsBackend(_Backend):
    def warm_up(self) -> None:
        import pyarrow.parquet  # noqa: F401

        self.manager = _manager(self.spec)
        self.manager.registry.names()
        self.manager.store.fs.ls(self.manager.store._root_fs_path.split("/", 1)[0] or "/")

    def write(self, df: pd.DataFrame, repeat: int) -> Any:
        return self.manager.dump(df, _producer(repeat))

    def read(self, handle: Any) -> pd.DataFrame:
        return self.manager.load(handle)

    def stored_bytes(self, handle: Any) -> int:
        store = self.manager.store
        folder = posixpath.dirname(handle["uri"])
        return sum(store.size(url) for url in store.list_files(folder))

    def delete(self, handle: Any) -> None:
        self.manager.purge(handle)


class _XComObjectStorageBackend(_Backend):
    def warm_up(self) -> None:
        import pyarrow.parquet  # noqa: F401
        from airflow.providers.common.io.xcom.backend import XComObjectStorageBackend, _get_base_path

        self.backend = XComObjectStorageBackend
        base = _get_base_path()
        base.mkdir(parents=True, exist_ok=True)
        base.exists()

    def write(self, df: pd.DataFrame, repeat: int) -> Any:
        return self.backend.serialize_value(
            df, key="return_value", task_id="task", dag_id="bench_dag", run_id="run_1", map_index=-1
        )

    def read(self, handle: Any) -> pd.DataFrame:
        return self.backend.deserialize_value(types.SimpleNamespace(value=handle))

    def _path(self, handle: Any) -> Any:
        return self.backend._get_full_path(handle)

    def stored_bytes(self, handle: Any) -> int:
        path = self._path(handle)
        return int(path.fs.size(path.path))

    def delete(self, handle: Any) -> None:
        self._path(handle).unlink(missing_ok=True)


class _PyarrowBackend(_Backend):
    def warm_up(self) -> None:
        import pyarrow.parquet  # noqa: F401
        from airflow.sdk import ObjectStoragePath

        if self.spec["store"] == "s3":
            root = ObjectStoragePath(f"s3://aws_default@{BUCKET}/pyarrow")
        else:
            root = ObjectStoragePath(_store_url(self.spec, "pyarrow"))
            root.mkdir(parents=True, exist_ok=True)
        self.fs = root.fs
        self.root = root.path.rstrip("/")
        self.fs.ls(self.root.split("/", 1)[0] if self.spec["store"] == "s3" else self.root)

    def write(self, df: pd.DataFrame, repeat: int) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = f"{self.root}/frame-{repeat}.parquet"
        table = pa.Table.from_pandas(df)
        if self.spec["store"] == "s3":
            with self.fs.open(path, "wb") as out:
                pq.write_table(table, out, compression="zstd")
        else:
            pq.write_table(table, path, compression="zstd")
        return path

    def read(self, handle: Any) -> pd.DataFrame:
        import pyarrow.parquet as pq

        if self.spec["store"] == "s3":
            return pq.read_table(handle, filesystem=self.fs).to_pandas()
        return pq.read_table(handle).to_pandas()

    def stored_bytes(self, handle: Any) -> int:
        return int(self.fs.size(handle))

    def delete(self, handle: Any) -> None:
        self.fs.rm(handle)


_BACKEND_CLASSES: dict[str, type[_Backend]] = {
    "mlops": _MlopsBackend,
    "xcom-objectstorage": _XComObjectStorageBackend,
    "pyarrow": _PyarrowBackend,
}


def _timed(func: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def job_roundtrip(spec: dict[str, Any]) -> dict[str, Any]:
    """Write and read one frame ``repeats`` times with one backend."""
    backend = _BACKEND_CLASSES[spec["backend"]](spec)
    backend.warm_up()
    df = DataGenerator().frame(spec["rows"])
    probe = MemoryProbe()
    writes: list[float] = []
    reads: list[float] = []
    result: dict[str, Any] = {
        "memory_method": probe.method,
        "frame_memory_bytes": int(df.memory_usage(deep=True).sum()),
    }
    for repeat in range(spec["repeats"]):
        probe.start()
        seconds, handle = _timed(lambda repeat=repeat: backend.write(df, repeat))
        writes.append(seconds)
        if repeat == 0:
            result["peak_rss_write_bytes"] = probe.increase()
            result["stored_bytes"] = backend.stored_bytes(handle)
        probe.start()
        seconds, back = _timed(lambda handle=handle: backend.read(handle))
        reads.append(seconds)
        if repeat == 0:
            result["peak_rss_read_bytes"] = probe.increase()
            result["mismatch"] = _frames_equal(back, df)
        del back
        backend.delete(handle)
    result.update(
        write_s=min(writes),
        read_s=min(reads),
        roundtrip_s=min(w + r for w, r in zip(writes, reads, strict=True)),
        write_all_s=writes,
        read_all_s=reads,
    )
    return result


def job_columns(spec: dict[str, Any]) -> dict[str, Any]:
    """Full read vs a 1-of-10-columns read of one stored frame through ``ArtifactRef``."""
    from airflow_mlops_provider.artifacts.manifest import Reference
    from airflow_mlops_provider.artifacts.refs import ArtifactRef

    backend = _MlopsBackend(spec)
    backend.warm_up()
    df = DataGenerator().frame(spec["rows"])
    row = backend.write(df, 0)
    expected_column = df[["f0"]].copy()
    del df
    gc.collect()
    ref = ArtifactRef(Reference.from_row(row), backend.manager)
    probe = MemoryProbe()
    result: dict[str, Any] = {"memory_method": probe.method}
    requests = _RequestLog(backend.manager.store)
    for name, load in (("full", ref.load), ("column", lambda: ref.load(columns=["f0"]))):
        times: list[float] = []
        for repeat in range(spec["repeats"]):
            probe.start()
            requests.clear()
            seconds, value = _timed(load)
            times.append(seconds)
            if repeat == 0:
                result[f"requests_{name}"] = requests.summary()
                result[f"peak_rss_{name}_bytes"] = probe.increase()
                result[f"{name}_shape"] = list(value.shape)
                if name == "column":
                    result["mismatch"] = _frames_equal(value, expected_column)
            del value
        result[f"{name}_s"] = min(times)
        result[f"{name}_all_s"] = times
    result["column_fraction_of_file"] = _column_fraction(ref, "f0")
    backend.delete(row)
    return result


class _RequestLog:
    """The S3 requests a read sends (botocore's ``before-send`` event), to show what it fetched."""

    def __init__(self, store: Any) -> None:
        self.sent: list[tuple[str, str | None]] = []
        self.object_size = 0
        client = getattr(store.fs, "s3", None)
        if client is not None:
            client.meta.events.register("before-send.s3", self._on_send)

    def _on_send(self, request: Any, **_: Any) -> None:
        byte_range = request.headers.get("Range")
        if isinstance(byte_range, bytes):
            byte_range = byte_range.decode()
        self.sent.append((request.method, byte_range))

    def clear(self) -> None:
        self.sent.clear()

    def summary(self) -> dict[str, Any] | None:
        """Requests by method and the bytes ranged GETs asked for (``None`` for local stores)."""
        if not self.sent:
            return None
        methods: dict[str, int] = {}
        ranged = 0
        for method, byte_range in self.sent:
            methods[method] = methods.get(method, 0) + 1
            if byte_range:
                start, _, end = byte_range.removeprefix("bytes=").partition("-")
                if end:  # "bytes=0-" is a whole-object read
                    ranged += int(end) - int(start) + 1
        return {"by_method": methods, "ranged_bytes": ranged, "ranges": [r for _, r in self.sent if r]}


def _column_fraction(ref: Any, column: str) -> float:
    """Share of the Parquet file's compressed column bytes that belong to ``column``."""
    import pyarrow.parquet as pq

    with ref.open() as raw:
        metadata = pq.ParquetFile(raw).metadata
    index = metadata.schema.to_arrow_schema().get_field_index(column)
    total = part = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for i in range(row_group.num_columns):
            size = row_group.column(i).total_compressed_size
            total += size
            part += size if i == index else 0
    return part / total if total else 0.0


def _stream_reader(gen: DataGenerator, batch_rows: int, batches: int) -> pa.RecordBatchReader:
    import pyarrow as pa

    schema = gen.batch(16, seed=0).schema

    def produce() -> Iterator[pa.RecordBatch]:
        for index in range(batches):
            yield gen.batch(batch_rows, seed=index)

    return pa.RecordBatchReader.from_batches(schema, produce())


def job_big_write(spec: dict[str, Any]) -> dict[str, Any]:
    """Write a ~``target_bytes`` artifact from a RecordBatchReader (never holding it in memory)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    backend = _MlopsBackend(spec)
    backend.warm_up()
    gen = DataGenerator()
    sample = gen.batch(spec["batch_rows"], seed=10_000)
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, sample.schema, compression="zstd", write_page_checksum=True) as writer:
        writer.write_batch(sample)
    per_batch = sink.getvalue().size
    batches = math.ceil(spec["target_bytes"] / per_batch)
    del sample, sink
    reader = _stream_reader(gen, spec["batch_rows"], batches)
    probe = MemoryProbe()
    probe.start()
    base = probe.base
    seconds, row = _timed(lambda: backend.write(reader, 0))
    Path(spec["row_path"]).write_text(json.dumps(row))
    return {
        "memory_method": probe.method,
        "write_s": seconds,
        "batches": batches,
        "batch_rows": spec["batch_rows"],
        "rows": row["details"]["rows"],
        "stored_bytes": row["size_bytes"],
        "arrow_bytes": row["details"]["memory_bytes"],
        "baseline_rss_bytes": base,
        "peak_rss_bytes": peak_rss(),
        "peak_rss_increase_bytes": probe.increase(),
    }


def job_big_stream(spec: dict[str, Any]) -> dict[str, Any]:
    """Stream the big artifact back with ``ArtifactRef.iter_batches`` in a fresh process."""
    from airflow_mlops_provider.artifacts.manifest import Reference
    from airflow_mlops_provider.artifacts.refs import ArtifactRef

    backend = _MlopsBackend(spec)
    backend.warm_up()
    row = json.loads(Path(spec["row_path"]).read_text())
    ref = ArtifactRef(Reference.from_row(row), backend.manager)
    probe = MemoryProbe()
    probe.start()
    base = probe.base
    rows = batches = 0
    checksum = 0.0
    start = time.perf_counter()
    for batch in ref.iter_batches(batch_size=spec["batch_size"]):
        rows += batch.num_rows
        batches += 1
        checksum += float(batch.column(0)[0].as_py())  # touch the data
    seconds = time.perf_counter() - start
    return {
        "memory_method": probe.method,
        "stream_s": seconds,
        "rows": rows,
        "batches": batches,
        "rows_match": rows == row["details"]["rows"],
        "baseline_rss_bytes": base,
        "peak_rss_bytes": peak_rss(),
        "peak_rss_increase_bytes": probe.increase(),
    }


JOBS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "roundtrip": job_roundtrip,
    "columns": job_columns,
    "big_write": job_big_write,
    "big_stream": job_big_stream,
}


def run_worker(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    result = JOBS[spec["job"]](spec)
    Path(spec["result_path"]).write_text(json.dumps(result))


# ------------------------------------------------------------------------------------------------
# Orchestrator side
# ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """moto's standalone S3 server on 127.0.0.1, as a subprocess."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return
            time.sleep(0.2)
        raise RuntimeError("moto server did not start listening")

    def create_bucket(self, name: str) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=name)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Bench:
    """Runs the jobs in subprocesses and collects their results."""

    def __init__(self, workdir: Path, endpoint: str | None, repeats: int) -> None:
        self.workdir = workdir
        self.endpoint = endpoint
        self.repeats = repeats
        self.counter = 0

    def env(self, store: str) -> dict[str, str]:
        env = dict(os.environ)
        home = self.workdir / "airflow_home"
        home.mkdir(exist_ok=True)
        if store == "s3":
            xcom_path = f"s3://aws_default@{BUCKET}/xcom"
        else:
            xcom_path = (self.workdir / "store" / "xcom").as_uri()
        env.update(
            AIRFLOW_HOME=str(home),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH=xcom_path,
            AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD="0",
            # Never reach for real credentials or the EC2 metadata endpoint.
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
            PYTHONHASHSEED="0",
        )
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
            env.pop(name, None)
        if self.endpoint:
            env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
                {
                    "conn_type": "aws",
                    "login": "testing",
                    "password": "testing",
                    "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
                }
            )
        return env

    def run(self, job: str, store: str, **params: Any) -> dict[str, Any]:
        self.counter += 1
        spec_path = self.workdir / f"job-{self.counter}.json"
        result_path = self.workdir / f"job-{self.counter}.result.json"
        spec = {
            "job": job,
            "store": store,
            "workdir": str(self.workdir),
            "repeats": self.repeats,
            "result_path": str(result_path),
            **params,
        }
        spec_path.write_text(json.dumps(spec))
        label = " ".join(f"{k}={v}" for k, v in {"job": job, "store": store, **params}.items())
        print(f"[bench] {label} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_path)],
            env=self.env(store),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=WORKER_TIMEOUT_S,
            check=False,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            tail = "\n".join((proc.stderr or "").splitlines()[-25:])
            print(f"[bench]   FAILED ({proc.returncode}) after {elapsed:.1f}s:\n{tail}", file=sys.stderr)
            return {**spec, "error": tail or f"exit code {proc.returncode}"}
        result = json.loads(result_path.read_text())
        print(f"[bench]   done in {elapsed:.1f}s", file=sys.stderr, flush=True)
        return {**{k: v for k, v in spec.items() if k not in ("workdir", "result_path")}, **result}


def provider_source_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((REPO / "airflow_mlops_provider").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def git_state() -> dict[str, str]:
    def git(*args: str) -> str:
        with contextlib.suppress(Exception):
            return subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.strip()
        return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty_files": git("status", "--porcelain", "--", "airflow_mlops_provider"),
    }


def machine_info() -> dict[str, Any]:
    from importlib.metadata import version

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError), open("/proc/meminfo") as info:
        mem = f"{int(info.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    packages = {}
    for name in (
        "apache-airflow-core",
        "apache-airflow-task-sdk",
        "apache-airflow-providers-common-io",
        "apache-airflow-providers-amazon",
        "pandas",
        "pyarrow",
        "numpy",
        "s3fs",
        "moto",
    ):
        with contextlib.suppress(Exception):
            packages[name] = version(name)
    return {
        "cpus": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu,
        "memory": mem,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


# -- reporting ------------------------------------------------------------------------------------


def _mb(value: Any) -> str:
    return "n/a" if value is None else f"{value / MB:,.1f}"


def _s(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}"


def _rows(value: int) -> str:
    return f"{value // 1_000_000}M" if value >= 1_000_000 else f"{value // 1000}k"


def roundtrip_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | store | backend | write s | read s | round trip s | stored MB | peak RSS write MB "
        "| peak RSS read MB | data equal |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "error" in r:
            lines.append(f"| {_rows(r['rows'])} | {r['store']} | {r['backend']} | error | | | | | | |")
            continue
        equal = "yes" if r.get("mismatch") is None else f"no: {r['mismatch']}"
        lines.append(
            f"| {_rows(r['rows'])} | {r['store']} | {r['backend']} | {_s(r['write_s'])} | {_s(r['read_s'])} "
            f"| {_s(r['roundtrip_s'])} | {_mb(r['stored_bytes'])} | {_mb(r['peak_rss_write_bytes'])} "
            f"| {_mb(r['peak_rss_read_bytes'])} | {equal} |"
        )
    return "\n".join(lines)


def columns_table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| rows | store | full read s | 1-column read s | speed-up | column's share of the file "
        "| peak RSS full MB | peak RSS 1-column MB | S3 requests full | S3 requests 1-column |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]

    def requests(summary: dict[str, Any] | None) -> str:
        if not summary:
            return "n/a"
        methods = ", ".join(f"{n} {m}" for m, n in sorted(summary["by_method"].items()))
        ranged = summary["ranged_bytes"]
        return methods + (f" ({ranged / 1e6:.1f} MB in ranges)" if ranged else "")

    for r in results:
        if "error" in r:
            lines.append(f"| {_rows(r['rows'])} | {r['store']} | error | | | | | | | |")
            continue
        lines.append(
            f"| {_rows(r['rows'])} | {r['store']} | {_s(r['full_s'])} | {_s(r['column_s'])} "
            f"| {r['full_s'] / r['column_s']:.1f}x | {r['column_fraction_of_file']:.0%} "
            f"| {_mb(r['peak_rss_full_bytes'])} "
            f"| {_mb(r['peak_rss_column_bytes'])} "
            f"| {requests(r.get('requests_full'))} | {requests(r.get('requests_column'))} |"
        )
    return "\n".join(lines)


def stream_table(write: dict[str, Any], stream: dict[str, Any]) -> str:
    lines = [
        "| phase | store | rows | stored MB | seconds | peak RSS MB (absolute) | peak RSS MB (increase) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    if "error" in write:
        return "\n".join([*lines, "| write | local | error | | | | |"])
    lines.append(
        f"| write (RecordBatchReader, {write['batches']} batches of {write['batch_rows']:,} rows) | local "
        f"| {write['rows']:,} | {_mb(write['stored_bytes'])} | {_s(write['write_s'])} "
        f"| {_mb(write['peak_rss_bytes'])} | {_mb(write['peak_rss_increase_bytes'])} |"
    )
    if "error" in stream:
        lines.append("| stream | local | error | | | | |")
    else:
        lines.append(
            f"| stream (ArtifactRef.iter_batches, {stream['batches']:,} batches) | local "
            f"| {stream['rows']:,} "
            f"| {_mb(write['stored_bytes'])} | {_s(stream['stream_s'])} | {_mb(stream['peak_rss_bytes'])} "
            f"| {_mb(stream['peak_rss_increase_bytes'])} |"
        )
    return "\n".join(lines)


def evaluate_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    roundtrips = [r for r in report["roundtrip"] if "error" not in r]
    rows = max((r["rows"] for r in roundtrips), default=0)
    by_key = {(r["store"], r["backend"]): r for r in roundtrips if r["rows"] == rows}
    for store in ("local", "s3"):
        mine, xcom, raw = (by_key.get((store, b)) for b in BACKENDS)
        if mine and xcom:
            speedup = xcom["roundtrip_s"] / mine["roundtrip_s"]
            targets.append(
                {
                    "target": f"round trip >= {TARGET_SPEEDUP_VS_XCOM:g}x faster than "
                    "XComObjectStorageBackend",
                    "rows": rows,
                    "store": store,
                    "measured": f"{speedup:.2f}x ({_s(mine['roundtrip_s'])} s vs "
                    f"{_s(xcom['roundtrip_s'])} s)",
                    "met": speedup >= TARGET_SPEEDUP_VS_XCOM,
                }
            )
            ratio = mine["stored_bytes"] / xcom["stored_bytes"]
            targets.append(
                {
                    "target": f"stored bytes <= {TARGET_BYTES_RATIO_VS_XCOM:g}x XComObjectStorageBackend",
                    "rows": rows,
                    "store": store,
                    "measured": f"{ratio:.3f}x ({_mb(mine['stored_bytes'])} MB vs "
                    f"{_mb(xcom['stored_bytes'])} MB)",
                    "met": ratio <= TARGET_BYTES_RATIO_VS_XCOM,
                }
            )
        if mine and raw:
            slowdown = mine["roundtrip_s"] / raw["roundtrip_s"]
            targets.append(
                {
                    "target": f"round trip <= {TARGET_SLOWDOWN_VS_PYARROW:g}x raw pyarrow (zstd)",
                    "rows": rows,
                    "store": store,
                    "measured": f"{slowdown:.2f}x ({_s(mine['roundtrip_s'])} s vs "
                    f"{_s(raw['roundtrip_s'])} s)",
                    "met": slowdown <= TARGET_SLOWDOWN_VS_PYARROW,
                }
            )
    for r in report.get("columns", []):
        if "error" in r:
            continue
        speedup = r["full_s"] / r["column_s"]
        targets.append(
            {
                "target": f"1 of 10 columns >= {TARGET_COLUMN_SPEEDUP:g}x faster than a full read",
                "rows": r["rows"],
                "store": r["store"],
                "measured": f"{speedup:.2f}x ({_s(r['column_s'])} s vs {_s(r['full_s'])} s)",
                "met": speedup >= TARGET_COLUMN_SPEEDUP,
            }
        )
    stream = report.get("big_stream")
    if stream and "error" not in stream:
        write = report["big_write"]
        targets.append(
            {
                "target": f"stream a ~{report['big_gb']:g} GB artifact with peak RSS < "
                f"{TARGET_STREAM_PEAK_RSS / MB:g} MB",
                "rows": stream["rows"],
                "store": "local",
                "measured": f"{_mb(stream['peak_rss_bytes'])} MB peak RSS of the reading process "
                f"(+{_mb(stream['peak_rss_increase_bytes'])} MB over its baseline) for a "
                f"{_mb(write['stored_bytes'])} MB artifact",
                "met": stream["peak_rss_bytes"] < TARGET_STREAM_PEAK_RSS,
            }
        )
    return targets


def targets_table(targets: list[dict[str, Any]]) -> str:
    lines = ["| target | rows | store | measured | met |", "|---|---:|---|---|---|"]
    for t in targets:
        lines.append(
            f"| {t['target']} | {_rows(t['rows'])} | {t['store']} | {t['measured']} "
            f"| {'**yes**' if t['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def render(report: dict[str, Any]) -> str:
    parts: list[str] = []
    if report["roundtrip"]:
        parts += [
            f"### Round trip (best of {report['repeats']})",
            "",
            roundtrip_table(report["roundtrip"]),
            "",
        ]
    if report.get("columns"):
        parts += ["### Column projection via ArtifactRef", "", columns_table(report["columns"]), ""]
    if report.get("big_write"):
        parts += [
            f"### Streaming a ~{report['big_gb']:g} GB artifact",
            "",
            stream_table(report["big_write"], report["big_stream"]),
            "",
        ]
    parts += ["### Targets", "", targets_table(report["targets"])]
    return "\n".join(parts)


# -- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10k rows only: skip the 1M and 2 GB cases")
    parser.add_argument("--no-s3", action="store_true", help="skip the moto S3 store")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per timing (best is reported)")
    parser.add_argument("--json", type=Path, default=None, help="JSON results file (default: a temp file)")
    parser.add_argument("--big-gb", type=float, default=2.0, help="size of the streamed artifact, in GB")
    parser.add_argument("--big-batch-rows", type=int, default=1 << 19, help="rows per RecordBatch written")
    parser.add_argument(
        "--only",
        choices=("roundtrip", "columns", "stream"),
        action="append",
        help="run only these parts (repeatable; default: all)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary working folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        run_worker(args.worker)
        return

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench_xcom_"))
    json_path = args.json or workdir.parent / f"{workdir.name}.json"
    sizes = [10_000] if args.quick else [10_000, 1_000_000]
    stores = ["local"] if args.no_s3 else ["local", "s3"]
    digest_before = provider_source_digest()
    report: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine_info(),
        "git": git_state(),
        "provider_source_digest": digest_before,
        "repeats": args.repeats,
        "big_gb": args.big_gb,
        "frame": DataGenerator.__doc__,
        "roundtrip": [],
        "columns": [],
    }
    parts = set(args.only or ("roundtrip", "columns", "stream"))
    moto: MotoServer | None = None
    try:
        if "s3" in stores and parts & {"roundtrip", "columns"}:
            moto = MotoServer(workdir / "moto.log")
            moto.wait_ready()
            moto.create_bucket(BUCKET)
        bench = Bench(workdir, moto.endpoint if moto else None, args.repeats)
        if "roundtrip" in parts:
            for rows in sizes:
                for store in stores:
                    for backend in BACKENDS:
                        report["roundtrip"].append(bench.run("roundtrip", store, backend=backend, rows=rows))
        if not args.quick and "columns" in parts:
            for store in stores:
                report["columns"].append(bench.run("columns", store, rows=sizes[-1]))
        if not args.quick and "stream" in parts:
            row_path = workdir / "big_row.json"
            report["big_write"] = bench.run(
                "big_write",
                "local",
                target_bytes=int(args.big_gb * 1e9),
                batch_rows=args.big_batch_rows,
                row_path=str(row_path),
            )
            if "error" not in report["big_write"]:
                report["big_stream"] = bench.run(
                    "big_stream", "local", row_path=str(row_path), batch_size=65_536
                )
            else:
                report["big_stream"] = {"error": "write failed"}
            # The ~2 GB file goes right away, whatever else happens.
            shutil.rmtree(workdir / "store" / "mlops", ignore_errors=True)
    finally:
        if moto is not None:
            moto.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    report["targets"] = evaluate_targets(report)
    report["total_seconds"] = time.perf_counter() - started
    if provider_source_digest() != digest_before:
        report["warning"] = "the provider's source changed while the benchmark ran; re-run it"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, default=str))

    machine = report["machine"]
    print(
        f"Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['memory']} RAM, "
        f"Python {machine['python']}; pandas {machine['packages'].get('pandas')}, "
        f"pyarrow {machine['packages'].get('pyarrow')}"
    )
    dirty = len(report["git"]["dirty_files"].splitlines())
    print(
        f"Provider: commit {report['git']['commit'] or 'unknown'}"
        + (f" plus {dirty} uncommitted provider file(s)" if dirty else "")
        + f", source digest {report['provider_source_digest']}"
    )
    print()
    print(render(report))
    print()
    if "warning" in report:
        print(f"WARNING: {report['warning']}")
    print(f"Total {report['total_seconds']:.0f} s. JSON results: {json_path}")


if __name__ == "__main__":
    main()
