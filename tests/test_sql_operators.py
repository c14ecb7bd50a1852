"""SqlExtractOperator and DataFrameLoadOperator through real ``dag.test()`` runs.

The same DAGs run against SQLite (a file per test), PostgreSQL (a database created and dropped per
test on 127.0.0.1:5432) and Snowflake (fakesnow, which patches ``snowflake.connector.connect`` and
``write_pandas`` in this process, where ``dag.test()`` runs the tasks). Every database is the Airflow
connection ``warehouse``, given as ``AIRFLOW_CONN_WAREHOUSE``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
from airflow_runner import run_dag
from conftest import POSTGRES_URL, postgres_available

from airflow_mlops_provider.operators import (
    DataFrameLoadError,
    DataFrameLoadOperator,
    NotADataFrameError,
    NotASqlConnectionError,
    SqlExtractOperator,
    TargetTableExistsError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

CONN_ID = "warehouse"
SNOWFLAKE = {"account": "fakesnow", "user": "fake", "password": "fake-password", "database": "dwh"}


def source_frame() -> pd.DataFrame:
    """Ints, nullable ints, floats, strings, nulls and timestamps (with microseconds)."""
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "qty": pd.array([3, None, 1, 7, 2], dtype="Int64"),
            "price": [9.99, 0.5, np.nan, -1.25, 1e6],
            "name": ["apple", None, "crème brûlée", "", "o'neil; DROP TABLE orders"],
            "created": pd.to_datetime(
                [
                    "2024-01-01 08:00:00",
                    "2024-02-29 23:59:59.123456",
                    None,
                    "1999-12-31",
                    "2030-06-15 12:00:00",
                ],
                format="ISO8601",
            ),
        }
    )


def enriched(frame: pd.DataFrame) -> pd.DataFrame:
    """What the DAG's ``enrich`` task does."""
    return frame.assign(amount=frame["qty"] * frame["price"])


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """The comparable form of a frame, whatever database it went through.

    * Column names in lower case: fakesnow (like Snowflake for unquoted names) answers in upper case.
    * Integer columns that hold NULLs as float64: the databases keep the integer type, but pandas'
      ``read_sql`` has no nullable integers, so such a column comes back float64 with NaN.
    * Timestamps parsed and in microseconds: SQLite has no timestamp type and stores them as ISO
      text, which is read back as strings; the others return datetime64 in their own unit.
    * Missing strings as None (pandas' ``str`` dtype uses NaN), and rows sorted by id.
    """
    frame = frame.copy()
    frame.columns = [str(name).lower() for name in frame.columns]
    for column in frame.columns:
        values = frame[column]
        if column in ("created", "run_date"):
            frame[column] = pd.to_datetime(values, format="ISO8601").astype("datetime64[us]")
        elif pd.api.types.is_numeric_dtype(values) and column != "id":
            frame[column] = values.astype("float64")
        elif column == "id":
            frame[column] = values.astype("int64")
        else:
            frame[column] = values.astype(object).where(values.notna(), None)
    return frame.sort_values("id", kind="stable").reset_index(drop=True)


def assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(normalised(actual), normalised(expected))


class Warehouse:
    """One test database, also reachable from the DAGs as the Airflow connection ``warehouse``."""

    kind: str
    placeholder: str  # the driver's paramstyle for the bound ``min_id``

    def seed(self, table: str, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def read(self, table: str) -> pd.DataFrame:
        raise NotImplementedError

    def execute(self, *statements: str) -> None:
        raise NotImplementedError

    def columns(self, table: str) -> list[tuple[str, str]]:
        raise NotImplementedError

    def count(self, table: str) -> int:
        return len(self.read(table))


class SqliteWarehouse(Warehouse):
    kind = "sqlite"
    placeholder = ":min_id"

    def __init__(self, path: Path) -> None:
        self.path = path

    def connection_uri(self) -> str:
        # The sqlite provider's documented form: three slashes then the absolute path without its
        # leading "/" (sqlite:////abs/path breaks SqliteHook.get_conn: "invalid uri authority").
        return f"sqlite:///{str(self.path).lstrip('/')}"

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def seed(self, table: str, frame: pd.DataFrame) -> None:
        with contextlib.closing(self._connect()) as conn:
            frame.to_sql(table, conn, index=False)

    def read(self, table: str) -> pd.DataFrame:
        with contextlib.closing(self._connect()) as conn:
            return pd.read_sql(f"SELECT * FROM {table}", conn)

    def execute(self, *statements: str) -> None:
        with contextlib.closing(self._connect()) as conn, conn:
            for statement in statements:
                conn.execute(statement)

    def columns(self, table: str) -> list[tuple[str, str]]:
        with contextlib.closing(self._connect()) as conn:
            return [(row[1], row[2]) for row in conn.execute(f"PRAGMA table_info({table})")]


class PostgresWarehouse(Warehouse):
    kind = "postgres"
    placeholder = "%(min_id)s"

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine

        self.url = url
        self.engine = create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))

    def connection_uri(self) -> str:
        return self.url

    def seed(self, table: str, frame: pd.DataFrame) -> None:
        frame.to_sql(table, self.engine, index=False)

    def read(self, table: str) -> pd.DataFrame:
        return pd.read_sql(f"SELECT * FROM {table}", self.engine)

    def execute(self, *statements: str) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)

    def columns(self, table: str) -> list[tuple[str, str]]:
        with self.engine.connect() as conn:
            return [
                tuple(row)
                for row in conn.exec_driver_sql(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_name = %(table)s ORDER BY ordinal_position",
                    {"table": table},
                )
            ]


class SnowflakeWarehouse(Warehouse):
    """fakesnow: the connector's ``connect`` and ``write_pandas`` are patched while it is active."""

    kind = "snowflake"
    placeholder = "%(min_id)s"
    schema = "etl"

    def connection_uri(self) -> str:
        return json.dumps(
            {
                "conn_type": "snowflake",
                "login": SNOWFLAKE["user"],
                "password": SNOWFLAKE["password"],
                "schema": self.schema,
                "extra": {
                    "account": SNOWFLAKE["account"],
                    "database": SNOWFLAKE["database"],
                    "warehouse": "compute_wh",
                },
            }
        )

    def _connect(self) -> Any:
        import snowflake.connector

        return snowflake.connector.connect(**SNOWFLAKE, schema=self.schema)

    def seed(self, table: str, frame: pd.DataFrame) -> None:
        from snowflake.connector.pandas_tools import write_pandas

        with contextlib.closing(self._connect()) as conn:
            write_pandas(conn, frame, table, auto_create_table=True, use_logical_type=True)

    def read(self, table: str) -> pd.DataFrame:
        with contextlib.closing(self._connect()) as conn:
            return conn.cursor().execute(f"SELECT * FROM {table}").fetch_pandas_all()

    def execute(self, *statements: str) -> None:
        with contextlib.closing(self._connect()) as conn:
            for statement in statements:
                conn.cursor().execute(statement)


@contextlib.contextmanager
def open_warehouse(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    warehouse: Warehouse
    if kind == "sqlite":
        warehouse = SqliteWarehouse(tmp_path / "warehouse.sqlite")
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse.connection_uri())
        yield warehouse
    elif kind == "postgres":
        if not postgres_available():
            pytest.skip("start PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) to run this test")
        import psycopg2

        name = f"mlops_sql_{uuid.uuid4().hex[:10]}"
        admin = psycopg2.connect(POSTGRES_URL)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        warehouse = PostgresWarehouse(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name)
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse.connection_uri())
        try:
            yield warehouse
        finally:
            warehouse.engine.dispose()
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.close()
    else:
        import fakesnow

        warehouse = SnowflakeWarehouse()
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", warehouse.connection_uri())
        with fakesnow.patch():
            yield warehouse


@pytest.fixture(params=["sqlite", "postgres", "snowflake"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    with open_warehouse(request.param, tmp_path, monkeypatch) as opened:
        yield opened


@pytest.fixture(params=["sqlite", "postgres"])
def transactional_warehouse(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Warehouse]:
    """The databases written through SQLAlchemy in one transaction, with transactional DDL."""
    with open_warehouse(request.param, tmp_path, monkeypatch) as opened:
        yield opened


@pytest.fixture
def sqlite_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    with open_warehouse("sqlite", tmp_path, monkeypatch) as opened:
        yield opened


# --- extract, transform, load ------------------------------------------------------------------


def test_round_trip_then_append_doubles_and_replace_replaces(warehouse: Warehouse) -> None:
    source = source_frame()
    warehouse.seed("orders", source)
    expected = enriched(source)

    first = run_dag("mlops_sql_etl")
    assert first.state == "success", first.task_states
    assert first.row("append") == {"table": "orders_enriched", "rows": 5, "conn_id": CONN_ID}
    assert first.row("snapshot") == {"table": "orders_enriched_snapshot", "rows": 5, "conn_id": CONN_ID}
    extracted = first.row("extract")  # the DataFrame went to XCom as an artifact, not inline
    assert extracted["__mlops__"] == "artifact" and extracted["format"] == "arrow", extracted
    assert_same_rows(warehouse.read("orders_enriched"), expected)
    assert_same_rows(warehouse.read("orders_enriched_snapshot"), expected)
    assert_same_rows(warehouse.read("orders_enriched_once"), expected)

    second = run_dag("mlops_sql_etl")
    states = {task_id: state for (task_id, _), state in second.task_states.items()}
    assert states == {
        "extract": "success",
        "enrich": "success",
        "append": "success",
        "snapshot": "success",
        "create_once": "failed",  # if_exists="fail" and the first run created it
    }
    doubled = pd.concat([expected, expected], ignore_index=True)
    assert_same_rows(warehouse.read("orders_enriched"), doubled)
    assert_same_rows(warehouse.read("orders_enriched_snapshot"), expected)
    assert_same_rows(warehouse.read("orders_enriched_once"), expected)


def test_templated_sql_file_renders_ds_and_params_and_binds_parameters(warehouse: Warehouse) -> None:
    warehouse.seed("orders", source_frame())
    logical_date = dt.datetime(2024, 5, 17, 6, 0, tzinfo=dt.timezone.utc)

    result = run_dag(
        "mlops_sql_templated", logical_date=logical_date, run_conf={"placeholder": warehouse.placeholder}
    )

    assert result.state == "success", result.task_states
    assert result.row("load") == {"table": "orders_20240517", "rows": 3, "conn_id": CONN_ID}
    loaded = normalised(warehouse.read("orders_20240517"))
    assert loaded["id"].tolist() == [3, 4, 5]  # WHERE id >= bound min_id (3)
    assert loaded["name"].tolist() == ["CRÈME BRÛLÉE", "", "O'NEIL; DROP TABLE ORDERS"]
    assert loaded["run_date"].tolist() == [pd.Timestamp("2024-05-17")] * 3  # {{ ds }}
    assert loaded["label"].tolist() == ["daily"] * 3  # {{ params.label }}


# --- failures ----------------------------------------------------------------------------------


def test_write_failing_half_way_leaves_the_table_exactly_as_it_was(
    transactional_warehouse: Warehouse,
) -> None:
    warehouse = transactional_warehouse
    warehouse.execute(
        "CREATE TABLE guarded (id INTEGER NOT NULL, qty DOUBLE PRECISION NOT NULL CHECK (qty > 0))",
        "INSERT INTO guarded (id, qty) VALUES (100, 1.5), (101, 2.5)",
    )
    rows_before = warehouse.read("guarded")
    columns_before = warehouse.columns("guarded")

    result = run_dag("mlops_sql_failing_load")

    states = {task_id: state for (task_id, _), state in result.task_states.items()}
    assert states == {
        "violating_rows": "success",
        "unwritable_rows": "success",
        "append_violating": "failed",  # NOT NULL broken in the 3rd chunk of 3 rows
        "replace_unwritable": "failed",  # DROP + CREATE + 3 chunks done, the 4th chunk fails
    }
    assert result.state == "failed"
    assert warehouse.columns("guarded") == columns_before
    pd.testing.assert_frame_equal(warehouse.read("guarded"), rows_before)


def test_failed_write_error_says_what_was_attempted_and_that_nothing_changed(
    sqlite_warehouse: Warehouse,
) -> None:
    sqlite_warehouse.execute("CREATE TABLE guarded (id INTEGER, qty REAL NOT NULL)")
    frame = pd.DataFrame({"id": range(1, 11), "qty": [1.0] * 8 + [None, 2.0]})
    operator = DataFrameLoadOperator(
        task_id="append_violating", data=frame, conn_id=CONN_ID, table="guarded", chunksize=3
    )

    with pytest.raises(DataFrameLoadError) as caught:
        operator.execute({})

    message = str(caught.value)
    for part in (
        "'append_violating'",
        "'warehouse'",
        "'guarded'",
        "writing 10 rows",
        "INSERT statement 3 (rows 7 to 9), after 6 rows had gone in",
        "NOT NULL constraint failed",
        "rolled back",
        "left unchanged",
    ):
        assert part in message, message
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert sqlite_warehouse.count("guarded") == 0


def test_non_sql_connection_and_non_dataframe_fail_the_task_clearly(
    sqlite_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_HTTP_API", "http://127.0.0.1:9/api")

    result = run_dag("mlops_sql_bad_inputs")

    states = {task_id: state for (task_id, _), state in result.task_states.items()}
    assert states == {"extract_from_http": "failed", "summary": "success", "load_a_dict": "failed"}

    # The messages, from the same operators called directly.
    extract = SqlExtractOperator(task_id="extract_from_http", conn_id="http_api", sql="SELECT 1")
    with pytest.raises(NotASqlConnectionError) as caught:
        extract.execute({})
    message = str(caught.value)
    for part in ("'extract_from_http'", "'http_api'", "'http'", "HttpHook", "postgres, snowflake, sqlite"):
        assert part in message, message

    load = DataFrameLoadOperator(task_id="load_a_dict", data={"rows": 3}, conn_id=CONN_ID, table="t")
    with pytest.raises(
        NotADataFrameError, match=r"Task 'load_a_dict': data must be a pandas DataFrame, got builtins\.dict"
    ):
        load.execute({})


def test_if_exists_is_checked_when_the_dag_is_parsed(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"Task 'save': if_exists='bogus' is not one of 'append', 'replace', 'fail'"
    ):
        DataFrameLoadOperator(task_id="save", data=None, conn_id=CONN_ID, table="t", if_exists="bogus")

    dag_file = tmp_path / "mlops_sql_bogus.py"
    dag_file.write_text(
        "from __future__ import annotations\n"
        "import pendulum\n"
        "from airflow.sdk import DAG\n"
        "from airflow_mlops_provider.operators import DataFrameLoadOperator\n"
        "with DAG('mlops_sql_bogus', schedule=None, start_date=pendulum.datetime(2024, 1, 1)):\n"
        "    DataFrameLoadOperator(task_id='save', data=None, conn_id='w', table='t', if_exists='bogus')\n"
    )
    from airflow_runner import dagbag_class

    DagBag = dagbag_class()

    bag = DagBag(dag_folder=str(dag_file), safe_mode=False)
    assert not bag.dags
    (error,) = bag.import_errors.values()
    assert "Task 'save': if_exists='bogus' is not one of" in error


def test_existing_table_with_if_exists_fail_writes_nothing(sqlite_warehouse: Warehouse) -> None:
    sqlite_warehouse.seed("orders", source_frame())
    operator = DataFrameLoadOperator(
        task_id="create_once", data=source_frame(), conn_id=CONN_ID, table="orders", if_exists="fail"
    )
    with pytest.raises(TargetTableExistsError, match=r"Task 'create_once': table 'orders' on connection"):
        operator.execute({})
    assert sqlite_warehouse.count("orders") == 5


# --- Snowflake specifics (fakesnow) ------------------------------------------------------------


@pytest.fixture
def snowflake_warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warehouse]:
    with open_warehouse("snowflake", tmp_path, monkeypatch) as opened:
        yield opened


def test_snowflake_failed_write_says_nothing_was_loaded(snowflake_warehouse: Warehouse) -> None:
    snowflake_warehouse.seed("orders", source_frame())
    # An extra column the existing table does not have: the load is refused.
    frame = source_frame().assign(extra=1.0)
    operator = DataFrameLoadOperator(
        task_id="append_orders", data=frame, conn_id=CONN_ID, table="orders", chunksize=2
    )
    with pytest.raises(DataFrameLoadError) as caught:
        operator.execute({})
    message = str(caught.value)
    for part in ("'append_orders'", "'warehouse'", "'orders'", "writing 5 rows (3 chunk(s) of up to 2 rows)"):
        assert part in message, message
    assert "0 of the 5 rows (0 of 3 chunks) were written" in message
    assert_same_rows(snowflake_warehouse.read("orders"), source_frame())


def test_snowflake_partial_load_reports_rows_and_chunks_written(
    snowflake_warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snowflake.connector.pandas_tools

    def partial_write_pandas(conn: Any, df: pd.DataFrame, table_name: str, **kwargs: Any) -> tuple:
        return (
            False,
            2,
            4,
            [("file0", "LOADED", 2, 2), ("file1", "LOADED", 2, 2), ("file2", "LOAD_FAILED", 1, 0)],
        )

    monkeypatch.setattr(snowflake.connector.pandas_tools, "write_pandas", partial_write_pandas)
    operator = DataFrameLoadOperator(
        task_id="append_orders", data=source_frame(), conn_id=CONN_ID, table="orders", chunksize=2
    )
    with pytest.raises(DataFrameLoadError, match=r"4 of 5 rows were written, in 2 of 3 chunk\(s\)"):
        operator.execute({})


def test_snowflake_empty_frame_replace_truncates(snowflake_warehouse: Warehouse) -> None:
    snowflake_warehouse.seed("orders", source_frame())
    empty = source_frame().iloc[0:0]

    appended = DataFrameLoadOperator(task_id="append_none", data=empty, conn_id=CONN_ID, table="orders")
    assert appended.execute({}) == {"table": "orders", "rows": 0, "conn_id": CONN_ID}
    assert snowflake_warehouse.count("orders") == 5

    replace = DataFrameLoadOperator(
        task_id="replace_none", data=empty, conn_id=CONN_ID, table="orders", if_exists="replace"
    )
    assert replace.execute({})["rows"] == 0
    assert snowflake_warehouse.count("orders") == 0
