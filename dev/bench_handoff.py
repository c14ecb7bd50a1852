"""Benchmark: a DataFrame hand-off through this provider, common-io's XCom backend and raw pyarrow,
all in one process with the contenders interleaved (sequential subprocesses were distorted by load
swings on a 2-core machine).

Run it from the repository root with the project's virtualenv::

    .venv/bin/python dev/bench_handoff.py                    # everything (about 10 minutes)
    .venv/bin/python dev/bench_handoff.py --only large --repeats 5
    .venv/bin/python dev/bench_handoff.py --only small,fresh --no-s3
    .venv/bin/python dev/bench_handoff.py --json out.json    # where the JSON results go

Parts:

* ``large``: two frames of ``--rows`` (1M) rows x 10 columns: ``string`` (dev/bench_xcom.py's frame:
  6 float64, 3 string, 1 categorical) and ``float`` (8 N(0,1) float64, a categorical and a short
  string). Contenders: ``common-io`` (``XComObjectStorageBackend.serialize_value`` /
  ``deserialize_value``, threshold 0), ``mlops-arrow`` and ``mlops-parquet`` (``ArtifactManager``
  ``dump`` / ``load`` with ``table_format`` arrow / parquet), and the floors ``pyarrow-ipc`` (IPC file,
  zstd at the provider's default level, threads; read memory-mapped), ``pyarrow-ipc-level1`` (the
  same at pyarrow's default zstd level 1) and ``pyarrow-parquet`` (zstd). Local folder store. Each repeat
  runs every contender once, in an order rotated per repeat; the first repeat checks the frame comes
  back equal. Reported: min and median of write, read and round trip, stored bytes, the ratios
  the performance issue sets targets on, and the CPU time of the process (all threads) for the
  provider and the raw IPC floor: spread over every core, it bounds how close to the floor the
  provider's round trip can get on this machine.
* ``small``: the backend's own share for a 1k-row frame (``serialize_value`` + ``deserialize_value``
  of each XCom backend, the default ``BaseXCom`` included), median per call over interleaved blocks.
* ``fresh``: the first push of a 200-row frame in a fresh Python process (what each Airflow task
  process pays once): Airflow's task runner (which imports the configured XCom backend) and pandas
  are imported and the frame built before the clock starts, as in a task process; then
  ``serialize_value`` runs. Measured at once, and after a task of one second (for the provider,
  with the warm-up its listener starts when a task starts: on Airflow 3.2+ it makes the S3 client
  too, on 3.1 it only imports the libraries). Local folder and S3 (moto on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_xcom import BUCKET, DataGenerator, MotoServer, git_state, machine_info

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
FRESH = ("mlops", "common-io")


def _environment(workdir: Path, endpoint: str | None) -> dict[str, str]:
    env = {
        "AIRFLOW_HOME": str(workdir / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": (workdir / "common-io").as_uri(),
        "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": "0",
        "AIRFLOW__MLOPS__ARTIFACT_ROOT": (workdir / "mlops").as_uri(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if endpoint:
        env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
            {"conn_type": "aws", "login": "testing", "password": "testing",
             "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
        )  # fmt: skip
    return env


def float_frame(rows: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    columns: dict[str, Any] = {f"x{i}": rng.standard_normal(rows) for i in range(8)}
    columns["segment"] = pd.Categorical(rng.choice(["a", "b", "c", "d", "e"], rows))
    columns["code"] = pd.Series(rng.choice(["red", "green", "blue"], rows), dtype="str")
    return pd.DataFrame(columns)


# -- contenders ---------------------------------------------------------------------------------------


class Contender:
    def write(self, df: Any, n: int) -> Any: ...
    def read(self, handle: Any) -> Any: ...
    def stored_bytes(self, handle: Any) -> int: ...
    def delete(self, handle: Any) -> None: ...


class Mlops(Contender):
    def __init__(self, workdir: Path, table_format: str) -> None:
        from airflow_mlops_provider.artifacts.config import ArtifactSettings
        from airflow_mlops_provider.artifacts.manager import ArtifactManager

        root = (workdir / f"mlops-{table_format}").as_uri()
        self.manager = ArtifactManager(ArtifactSettings(root, conn_id=None, table_format=table_format))

    def write(self, df: Any, n: int) -> Any:
        from airflow_mlops_provider.artifacts.manifest import Producer

        return self.manager.dump(df, Producer("bench", "run", "task", n, "return_value", 1))

    def read(self, handle: Any) -> Any:
        return self.manager.load(handle)

    def stored_bytes(self, handle: Any) -> int:
        store = self.manager.store
        return sum(store.size(url) for url in store.list_files(handle["uri"].rsplit("/", 1)[0]))

    def delete(self, handle: Any) -> None:
        self.manager.purge(handle)


class Default(Contender):
    """An XCom backend class, through ``serialize_value`` / ``deserialize_value``."""

    def __init__(self) -> None:
        from airflow.sdk.bases.xcom import BaseXCom

        self.backend: Any = BaseXCom

    def write(self, df: Any, n: int) -> Any:
        return self.backend.serialize_value(
            df, key="return_value", task_id="task", dag_id="bench", run_id="run", map_index=n
        )

    def read(self, handle: Any) -> Any:
        return self.backend.deserialize_value(types.SimpleNamespace(value=handle))

    def stored_bytes(self, handle: Any) -> int:
        return len(json.dumps(handle))

    def delete(self, handle: Any) -> None:
        pass


class CommonIo(Default):
    def __init__(self) -> None:
        from airflow.providers.common.io.xcom.backend import XComObjectStorageBackend

        self.backend = XComObjectStorageBackend

    def stored_bytes(self, handle: Any) -> int:
        path = self.backend._get_full_path(handle)
        return int(path.fs.size(path.path))

    def delete(self, handle: Any) -> None:
        self.backend._get_full_path(handle).unlink(missing_ok=True)


class MlopsBackend(Default):
    def __init__(self) -> None:
        from airflow_mlops_provider.xcom.backend import ArtifactXComBackend

        self.backend = ArtifactXComBackend

    def delete(self, handle: Any) -> None:
        self.backend.purge(types.SimpleNamespace(value=handle))


class RawIpc(Contender):
    """Arrow IPC written and read by pyarrow alone: zstd at ``level`` (the provider's default unless
    given), on all cores; read memory-mapped."""

    def __init__(self, workdir: Path, level: int | None = None, name: str = "pyarrow-ipc") -> None:
        from airflow_mlops_provider.artifacts.config import DEFAULT_ZSTD_LEVEL

        self.name = name
        self.level = DEFAULT_ZSTD_LEVEL if level is None else level
        self.folder = workdir / self.name
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, df: Any, n: int) -> Any:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        path = self.folder / f"{n}.arrow"
        table = pa.Table.from_pandas(df)
        codec = pa.Codec("zstd", compression_level=self.level)
        options = ipc.IpcWriteOptions(compression=codec, use_threads=True)
        with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema, options=options) as writer:
            writer.write_table(table)
        return path

    def read(self, handle: Any) -> Any:
        import pyarrow as pa
        import pyarrow.ipc as ipc

        with pa.memory_map(str(handle)) as source:
            return ipc.open_file(source).read_all().to_pandas()

    def stored_bytes(self, handle: Any) -> int:
        return handle.stat().st_size

    def delete(self, handle: Any) -> None:
        handle.unlink()


class RawParquet(RawIpc):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, name="pyarrow-parquet")

    def write(self, df: Any, n: int) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.folder / f"{n}.parquet"
        pq.write_table(pa.Table.from_pandas(df), str(path), compression="zstd")
        return path

    def read(self, handle: Any) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(str(handle)).to_pandas()


def _equal(left: Any, right: Any) -> bool:
    import pandas as pd

    try:
        pd.testing.assert_frame_equal(left, right, check_exact=True)
    except AssertionError:
        return False
    return True


def _timed(func: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def _timed_with_cpu(func: Any) -> tuple[float, float, Any]:
    """Wall time, CPU time of the whole process (all its threads) and the result."""
    start, cpu = time.perf_counter(), time.process_time()
    result = func()
    return time.perf_counter() - start, time.process_time() - cpu, result


def _summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values)}


# -- parts ----------------------------------------------------------------------------------------------


def bench_large(workdir: Path, rows: int, repeats: int) -> dict[str, Any]:
    contenders: dict[str, Contender] = {
        "common-io": CommonIo(),
        "mlops-arrow": Mlops(workdir, "arrow"),
        "mlops-parquet": Mlops(workdir, "parquet"),
        "pyarrow-ipc": RawIpc(workdir),
        "pyarrow-ipc-level1": RawIpc(workdir, level=1, name="pyarrow-ipc-level1"),
        "pyarrow-parquet": RawParquet(workdir),
    }
    frames = {"string": DataGenerator().frame(rows), "float": float_frame(rows)}
    results: dict[str, Any] = {}
    for frame_name, df in frames.items():
        samples: dict[str, dict[str, list[float]]] = {
            n: {"write": [], "read": [], "rt": [], "cpu_write": [], "cpu_read": []} for n in contenders
        }
        info: dict[str, dict[str, Any]] = {n: {} for n in contenders}
        order = list(contenders)
        for repeat in range(repeats + 1):  # repeat 0 warms up (imports, first allocations)
            order = order[1:] + order[:1]
            for name in order:
                contender = contenders[name]
                gc.collect()
                write = lambda c=contender, d=df, n=repeat: c.write(d, n)  # noqa: E731
                write_s, write_cpu, handle = _timed_with_cpu(write)
                read_s, read_cpu, back = _timed_with_cpu(lambda c=contender, h=handle: c.read(h))
                if repeat == 0:
                    info[name] = {"equal": _equal(df, back), "bytes": contender.stored_bytes(handle)}
                else:
                    samples[name]["write"].append(write_s)
                    samples[name]["read"].append(read_s)
                    samples[name]["rt"].append(write_s + read_s)
                    samples[name]["cpu_write"].append(write_cpu)
                    samples[name]["cpu_read"].append(read_cpu)
                del back
                contender.delete(handle)
            print(f"[bench] large {frame_name}: repeat {repeat}/{repeats}", file=sys.stderr, flush=True)
        results[frame_name] = {
            name: {
                "write": _summary(s["write"]),
                "read": _summary(s["read"]),
                "round_trip": _summary(s["rt"]),
                "round_trips": s["rt"],
                "cpu_write": _summary(s["cpu_write"]),
                "cpu_read": _summary(s["cpu_read"]),
                **info[name],
            }
            for name, s in samples.items()
        }
    return results


def bench_small(workdir: Path, rows: int, blocks: int, per_block: int) -> dict[str, Any]:
    contenders: dict[str, Contender] = {
        "mlops": MlopsBackend(),
        "common-io": CommonIo(),
        "default": Default(),
    }
    df = DataGenerator().frame(rows)
    writes: dict[str, list[float]] = {n: [] for n in contenders}
    reads: dict[str, list[float]] = {n: [] for n in contenders}
    order = list(contenders)
    for block in range(blocks + 1):  # block 0 warms up
        order = order[1:] + order[:1]
        for name in order:
            contender = contenders[name]
            for i in range(per_block):
                write_s, handle = _timed(lambda c=contender, n=i: c.write(df, n))
                read_s, back = _timed(lambda c=contender, h=handle: c.read(h))
                if block == 0 and i == 0:
                    assert _equal(df, back), name
                if block:
                    writes[name].append(write_s)
                    reads[name].append(read_s)
                contender.delete(handle)
    return {
        name: {
            "write_ms": statistics.median(writes[name]) * 1000,
            "read_ms": statistics.median(reads[name]) * 1000,
            "calls": len(writes[name]),
        }
        for name in contenders
    }


_FRESH = r"""
import sys, time, json
import pandas as pd
import numpy as np
import airflow.sdk.execution_time.task_runner  # every task process has it, with its XCom backend
from airflow.sdk.execution_time.xcom import XCom as backend
df = pd.DataFrame({"a": np.arange(200), "b": np.arange(200) * 0.5, "c": [f"s{i}" for i in range(200)]})
if sys.argv[1] != "push":  # a task of one second: what runs between the task's start and its push
    if "mlops" in backend.__module__:  # what the provider's listener does when the task starts
        from airflow_mlops_provider.artifacts.manager import ArtifactManager
        # In a task process of Airflow 3.2+ it also makes the client: the Task SDK's channel then
        # takes requests from other threads (3.1's does not).
        ArtifactManager.configured().store.warm_up(connect=sys.argv[1] == "task")
    time.sleep(1.0)
start = time.perf_counter()
row = backend.serialize_value(df, key="return_value", task_id="t", dag_id="fresh", run_id="r", map_index=0)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "modules": len(sys.modules)}))
"""
_FRESH_MODES = {"at once": "push", "after a 1 s task": "task", "after a 1 s task, Airflow 3.1": "task-3.1"}
_BACKENDS = {
    "mlops": "airflow_mlops_provider.xcom.backend.ArtifactXComBackend",
    "common-io": "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend",
}


def bench_fresh(workdir: Path, endpoint: str | None, repeats: int) -> dict[str, Any]:
    stores = {"local": None} | ({"s3": endpoint} if endpoint else {})
    results: dict[str, Any] = {}
    for store, store_endpoint in stores.items():
        env = {**os.environ, **_environment(workdir, store_endpoint)}
        if store == "s3":
            env["AIRFLOW__MLOPS__ARTIFACT_ROOT"] = f"s3://{BUCKET}/mlops"
            env["AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH"] = f"s3://aws_default@{BUCKET}/common-io"
        cases = [(name, when) for name in FRESH for when in ("at once", "after a 1 s task")]
        cases.append(("mlops", "after a 1 s task, Airflow 3.1"))
        samples: dict[tuple[str, str], list[dict[str, Any]]] = {case: [] for case in cases}
        for repeat in range(repeats + 1):
            for name, when in cases if repeat % 2 else reversed(cases):
                proc = subprocess.run(
                    [sys.executable, "-c", _FRESH, _FRESH_MODES[when]],
                    env={**env, "AIRFLOW__CORE__XCOM_BACKEND": _BACKENDS[name]},
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                if proc.returncode != 0:
                    raise RuntimeError(proc.stderr[-3000:])
                if repeat:  # repeat 0 fills the OS page cache
                    samples[(name, when)].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        results[store] = {
            f"{name}, {when}": {**_summary([s["seconds"] for s in runs]), "modules": runs[-1]["modules"]}
            for (name, when), runs in samples.items()
        }
    return results


# -- report ---------------------------------------------------------------------------------------------


def render(report: dict[str, Any]) -> str:
    lines: list[str] = []
    large = report.get("large")
    if large:
        lines.append(
            "| frame | contender | write s (med) | read s (med) | round trip s min / med | MB | equal |"
        )
        lines.append("|---|---|---:|---:|---:|---:|---|")
        for frame, rows in large.items():
            for name, r in rows.items():
                rt = r["round_trip"]
                lines.append(
                    f"| {frame} | {name} | {r['write']['median']:.3f} | {r['read']['median']:.3f} | "
                    f"{rt['min']:.3f} / {rt['median']:.3f} | {r['bytes'] / MB:.1f} | "
                    f"{'yes' if r['equal'] else 'NO'} |"
                )
        lines += ["", "| frame | ratio | by minimum | by median |", "|---|---|---:|---:|"]
        for frame, rows in large.items():
            floors = {
                "mlops-arrow": ("pyarrow-ipc", "pyarrow-ipc-level1"),
                "mlops-parquet": ("pyarrow-parquet",),
            }
            for ours, same_format in floors.items():
                base = rows["common-io"]["round_trip"]
                mine = rows[ours]["round_trip"]
                lines.append(
                    f"| {frame} | common-io / {ours} (speed-up) | {base['min'] / mine['min']:.2f}x | "
                    f"{base['median'] / mine['median']:.2f}x |"
                )
                for floor in (f for f in same_format if f in rows):
                    lines.append(
                        f"| {frame} | {ours} / {floor} (overhead) | "
                        f"{mine['min'] / rows[floor]['round_trip']['min']:.2f}x | "
                        f"{mine['median'] / rows[floor]['round_trip']['median']:.2f}x |"
                    )
                lines.append(
                    f"| {frame} | {ours} bytes / common-io bytes | "
                    f"{rows[ours]['bytes'] / rows['common-io']['bytes']:.2f} | |"
                )
        cores = os.cpu_count() or 1
        lines += [
            "",
            f"CPU time of the process (all threads), medians; the CPU-bound limit is the round trip's CPU "
            f"spread over all {cores} cores, against the raw floor's median round trip:",
            "",
            "| frame | contender | write CPU s | read CPU s | round trip CPU s | CPU-bound limit / floor |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for frame, rows in large.items():
            for name in ("mlops-arrow", "pyarrow-ipc"):
                r = rows[name]
                cpu = r["cpu_write"]["median"] + r["cpu_read"]["median"]
                limit = cpu / cores / rows["pyarrow-ipc"]["round_trip"]["median"]
                lines.append(
                    f"| {frame} | {name} | {r['cpu_write']['median']:.3f} | {r['cpu_read']['median']:.3f} | "
                    f"{cpu:.3f} | {limit:.2f}x |"
                )
    small = report.get("small")
    if small:
        lines += ["", "| backend | write ms | read ms | write + read ms |", "|---|---:|---:|---:|"]
        for name, r in small.items():
            lines.append(
                f"| {name} | {r['write_ms']:.2f} | {r['read_ms']:.2f} | {r['write_ms'] + r['read_ms']:.2f} |"
            )
    fresh = report.get("fresh")
    if fresh:
        lines += ["", "| store | backend | first push s min / med | modules loaded |", "|---|---|---:|---:|"]
        for store, rows in fresh.items():
            for name, r in rows.items():
                lines.append(f"| {store} | {name} | {r['min']:.3f} / {r['median']:.3f} | {r['modules']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="large,small,fresh", help="comma-separated parts")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large frames")
    parser.add_argument("--repeats", type=int, default=7, help="measured repeats (after one warm-up)")
    parser.add_argument("--no-s3", action="store_true", help="no moto server: fresh pushes to local only")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    parts = set(args.only.split(","))

    workdir = Path(tempfile.mkdtemp(prefix="bench-handoff-"))
    moto = None
    if "fresh" in parts and not args.no_s3:
        moto = MotoServer(workdir / "moto.log")
        moto.wait_ready()
        moto.create_bucket(BUCKET)
    os.environ.update(_environment(workdir, moto.endpoint if moto else None))
    report: dict[str, Any] = {
        "command": " ".join([".venv/bin/python", "dev/bench_handoff.py", *(argv or sys.argv[1:])]),
        "git": git_state(),
        "machine": machine_info(),
        "load_average_before": os.getloadavg(),
    }
    try:
        if "large" in parts:
            report["large"] = bench_large(workdir, args.rows, args.repeats)
        if "small" in parts:
            report["small"] = bench_small(workdir, 1000, blocks=args.repeats * 2, per_block=20)
        if "fresh" in parts:
            report["fresh"] = bench_fresh(workdir, moto.endpoint if moto else None, args.repeats)
    finally:
        if moto is not None:
            moto.stop()
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    report["load_average_after"] = os.getloadavg()
    out = args.json or Path(tempfile.gettempdir()) / "bench_handoff.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"load average before {report['load_average_before']}, after {report['load_average_after']}")
    print(f"commit {report['git']['commit']}; JSON: {out}\n")
    print(render(report))


if __name__ == "__main__":
    main()
