"""Classic operators for a one-line warehouse extract and load.

``SqlExtractOperator`` runs a query on any connection whose hook is a common-sql ``DbApiHook``
(Snowflake, PostgreSQL, SQLite, ...) and returns a pandas DataFrame, which the provider's XCom
backend stores as a table artifact. ``DataFrameLoadOperator`` writes a DataFrame to a table:
Snowflake through the connector's ``write_pandas``, other databases through pandas ``to_sql`` in a
single SQLAlchemy transaction, so a write that fails half-way leaves the table as it was.
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import math
import re
import sqlite3
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    BaseHook,
    BaseOperator,
)
from airflow.providers.common.sql.hooks.sql import DbApiHook

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence

    import pandas as pd
    from airflow.providers.common.compat.sdk import Context
    from sqlalchemy.engine import Dialect, Engine

IF_EXISTS_MODES = ("append", "replace", "fail")

#: Set by :func:`sampled`: extracts return at most this many rows (``ml.run_local(sample=N)``).
_SAMPLE_ROWS: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "mlops_sql_sample_rows", default=None
)


@contextlib.contextmanager
def sampled(rows: int) -> Iterator[None]:
    """While the block runs in this context, ``SqlExtractOperator`` returns the first ``rows`` rows.

    Tasks of ``dag.test()`` run in the calling thread, so a local run of a whole DAG on a sample
    needs no change to the DAG.
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"sample must be a positive number of rows, not {rows!r}.")
    token = _SAMPLE_ROWS.set(rows)
    try:
        yield
    finally:
        _SAMPLE_ROWS.reset(token)


#: Dialects that run ``SELECT * FROM (<query>) AS alias LIMIT n`` for any SELECT / WITH query.
LIMIT_DIALECTS = frozenset(
    {"postgresql", "sqlite", "mysql", "mariadb", "duckdb", "snowflake", "redshift", "trino"}
)
_QUERY_START = re.compile(r"(?is)\A\s*(select|with)\b")


def limited_query(sql: Any, dialect: str | None, limit: int) -> str | None:
    """``sql`` wrapped so the database returns at most ``limit`` rows, or ``None`` when that cannot be
    done safely: an unknown dialect, several statements, or something other than a query."""
    if not isinstance(sql, str) or dialect not in LIMIT_DIALECTS:
        return None
    body = sql.strip().rstrip(";").rstrip()
    if ";" in body or not _QUERY_START.match(body):  # a ";" may be in a literal, but do not guess
        return None
    return f"SELECT * FROM (\n{body}\n) AS mlops_sample LIMIT {int(limit)}"  # newlines: a trailing -- comment


def _dialect_name(hook: DbApiHook) -> str | None:
    try:
        return str(hook.dialect_name)
    except Exception:  # a hook whose URI cannot be built: sample by chunks
        return None


# Most bind parameters one statement may carry, for the dialects where multi-row
# ``INSERT ... VALUES (...), (...)`` is used: psycopg 3 binds server-side (PostgreSQL's protocol
# allows 65,535 per statement) and SQLite's limit is 32,766 since 3.32 (999 before).
_MULTI_VALUES_PARAMETER_LIMITS = {
    "postgresql": 65_535,
    "sqlite": 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999,
    "mysql": 65_535,
    "mariadb": 65_535,
}


class NotASqlConnectionError(AirflowFailException, TypeError):
    """The connection's hook is not a common-sql ``DbApiHook``: no retry can fix that."""


class NotADataFrameError(AirflowFailException, TypeError):
    """``DataFrameLoadOperator`` received something other than a pandas DataFrame."""


class DataFrameLoadError(AirflowException):
    """Writing the DataFrame failed; the message says what was written before the failure."""


class TargetTableExistsError(DataFrameLoadError, AirflowFailException):
    """``if_exists="fail"`` and the target table already exists."""


def get_sql_hook(conn_id: str, *, hook_params: dict | None, task_id: str, operator: str) -> DbApiHook:
    """The connection's hook, if it is a common-sql ``DbApiHook``; a clear error otherwise."""
    connection = BaseHook.get_connection(conn_id)
    hook = connection.get_hook(hook_params=dict(hook_params or {}))
    if not isinstance(hook, DbApiHook):
        raise NotASqlConnectionError(
            f"Task {task_id!r}: connection {conn_id!r} is of type {connection.conn_type!r}, whose hook "
            f"{type(hook).__name__} is not a common-sql DbApiHook. {operator} needs a SQL connection "
            "(postgres, snowflake, sqlite, mysql, ...): point conn_id at one."
        )
    return hook


def _is_snowflake(hook: DbApiHook) -> bool:
    try:
        from airflow.providers.snowflake.hooks.snowflake import SnowflakeHook
    except ImportError:  # the Snowflake provider is optional
        return getattr(hook, "conn_type", None) == "snowflake"
    return isinstance(hook, SnowflakeHook)


def _root_error(exc: BaseException) -> BaseException:
    """The database driver's own error when there is one (short, and without the SQL or rows)."""
    from sqlalchemy.exc import DBAPIError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and isinstance(current.orig, BaseException):
            return current.orig
        current = current.__cause__ or current.__context__
    return exc


def _describe_error(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split()).rstrip(".")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _make_sqlite_ddl_transactional(engine: Engine) -> None:
    """Let ``BEGIN`` cover DDL too on pysqlite.

    Python's ``sqlite3`` only opens a transaction before INSERT/UPDATE/DELETE, so the DROP and
    CREATE TABLE of ``if_exists="replace"`` would run (and stay) outside the transaction. SQLite
    itself has transactional DDL: hand transaction control to SQLAlchemy, which then emits BEGIN.
    See "Serializable isolation / Savepoints / Transactional DDL" in SQLAlchemy's SQLite docs.
    """
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN")


class _CountingInsert:
    """A pandas ``to_sql`` ``method``: the same INSERTs as pandas, counting what was sent."""

    def __init__(self, multi_values: bool) -> None:
        self.multi_values = multi_values
        self.rows = 0  # rows of the INSERT statements that completed
        self.statements = 0
        self.pending = 0  # rows of the statement being executed

    def __call__(self, pd_table: Any, conn: Any, keys: list[str], data_iter: Iterable) -> int:
        from sqlalchemy import insert

        records = [dict(zip(keys, row, strict=True)) for row in data_iter]
        self.pending = len(records)
        if self.multi_values:
            result = conn.execute(insert(pd_table.table).values(records))
        else:
            result = conn.execute(pd_table.table.insert(), records)
        self.rows += len(records)
        self.statements += 1
        self.pending = 0
        return result.rowcount

    def progress(self) -> str:
        if not self.pending:
            return f"after {self.rows} rows had gone in"
        first = self.rows + 1
        return (
            f"in INSERT statement {self.statements + 1} (rows {first} to {self.rows + self.pending}), "
            f"after {self.rows} rows had gone in"
        )


def _insert_strategy(dialect: Dialect, n_columns: int, chunksize: int) -> tuple[bool, int]:
    """Whether to use multi-row VALUES, and how many rows go in one INSERT statement."""
    limit = _MULTI_VALUES_PARAMETER_LIMITS.get(dialect.name)
    if limit is None or not getattr(dialect, "supports_multivalues_insert", False):
        return False, chunksize  # executemany, ``chunksize`` rows per call
    return True, max(1, min(chunksize, limit // max(n_columns, 1)))


class SqlExtractOperator(BaseOperator):
    """
    Run a query on a SQL connection and return the result as a pandas DataFrame.

    Works with any connection whose hook is a common-sql
    :class:`~airflow.providers.common.sql.hooks.sql.DbApiHook` (Snowflake, PostgreSQL, SQLite,
    MySQL, ...). The DataFrame is the task's return value: with this provider's XCom backend it is
    stored as a table artifact, and downstream tasks receive the DataFrame.

    :param sql: the query to run (templated), or a path to a template file ending in ``.sql``.
    :param conn_id: the Airflow connection to run it on (templated).
    :param parameters: (optional) values bound to the query's placeholders (templated). Use the
        driver's paramstyle: ``%(name)s`` / ``%s`` for PostgreSQL and Snowflake, ``:name`` / ``?``
        for SQLite.
    :param hook_params: (optional) extra keyword arguments for the connection's hook, for example
        ``{"warehouse": "...", "role": "..."}`` for Snowflake (templated).
    """

    template_fields: Sequence[str] = ("sql", "parameters", "conn_id", "hook_params")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict] = {"sql": "sql", "parameters": "json", "hook_params": "json"}
    ui_color = "#cdaaed"

    def __init__(
        self,
        *,
        sql: str,
        conn_id: str,
        parameters: Mapping | Iterable | None = None,
        hook_params: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.conn_id = conn_id
        self.parameters = parameters
        self.hook_params = hook_params or {}

    def prepare_template(self) -> None:
        """Parse ``parameters`` given as a string (e.g. from a template file)."""
        if isinstance(self.parameters, str):
            self.parameters = ast.literal_eval(self.parameters)

    def get_db_hook(self) -> DbApiHook:
        """The connection's ``DbApiHook``; raises :class:`NotASqlConnectionError` otherwise."""
        return get_sql_hook(
            self.conn_id, hook_params=self.hook_params, task_id=self.task_id, operator=type(self).__name__
        )

    def execute(self, context: Context) -> pd.DataFrame:
        hook = self.get_db_hook()
        self.log.info("Running on connection %r: %s", self.conn_id, self.sql)
        limit = _SAMPLE_ROWS.get()
        frame = None
        limited = None if limit is None else limited_query(self.sql, _dialect_name(hook), limit)
        if limited is not None:
            # The database itself returns at most ``limit`` rows (it may still read more to produce
            # them, e.g. to sort); only those cross the wire.
            frame = hook.get_df(limited, parameters=self.parameters, df_type="pandas")
            self.log.info("Sampling: LIMIT %d around the query (ml.run_local(sample=%d))", limit, limit)
        elif limit is not None:
            # The first chunk of a chunked read: the database runs the whole query, and a driver with
            # client-side cursors may transfer the whole result before the first chunk is cut.
            chunks = hook.get_df_by_chunks(
                self.sql, parameters=self.parameters, chunksize=limit, df_type="pandas"
            )
            frame = next(chunks, None)
            chunks.close()
            self.log.info(
                "Sampling: kept the first %d rows of a chunked read (ml.run_local(sample=%d)); the query "
                "itself is not limited on this connection's dialect",
                limit,
                limit,
            )
        if frame is None:  # not sampling, or an empty result (read whole for its columns)
            frame = hook.get_df(self.sql, parameters=self.parameters, df_type="pandas")
        self.log.info("Extracted %d rows x %d columns", len(frame), len(frame.columns))
        return frame


class DataFrameLoadOperator(BaseOperator):
    """
    Write a pandas DataFrame to a table of a SQL connection.

    * **Snowflake**: the connector's ``write_pandas`` (Parquet chunks staged, then one ``COPY INTO``
      with ``ON_ERROR=ABORT_STATEMENT``), with ``auto_create_table=True`` and
      ``use_logical_type=True`` (so timestamps load as timestamps); ``replace`` is its ``overwrite``
      (the rows are loaded into a new table that then takes the old one's place). Identifiers are
      quoted, as ``write_pandas`` does by default, so they are case-sensitive: ``table="orders"``
      is the table ``"orders"``, not ``ORDERS``.
    * **Other databases** (PostgreSQL, SQLite, MySQL, ...): pandas ``to_sql`` on the hook's SQLAlchemy
      engine, inside ONE transaction (``replace`` included: its DROP and CREATE are part of it on
      databases with transactional DDL such as PostgreSQL and SQLite). A write that fails half-way
      is rolled back and leaves the table exactly as it was. Rows go in multi-row ``INSERT``
      statements where the dialect allows it (PostgreSQL, SQLite, MySQL), else through executemany.

    The DataFrame's index is not written (``reset_index()`` first to keep it). A new table gets
    column types inferred from the DataFrame's dtypes.

    :param data: the DataFrame to write (templated), usually an upstream task's output
        (``extract.output`` or a ``@task``'s return value).
    :param conn_id: the Airflow connection to write to (templated).
    :param table: the target table (templated). ``"schema.table"`` is accepted when ``schema`` is
        not given.
    :param if_exists: what to do when the table exists: ``"append"`` (default) adds the rows,
        ``"replace"`` replaces the table with the DataFrame, ``"fail"`` fails the task. Checked when
        the DAG is parsed.
    :param schema: (optional) the schema of the table (templated); the connection's default if not
        given.
    :param chunksize: rows per INSERT statement (per Parquet file for Snowflake), 10,000 by default;
        multi-row INSERTs use fewer when the database's limit of bind parameters per statement
        requires it.
    """

    template_fields: Sequence[str] = ("data", "conn_id", "table", "schema")
    template_fields_renderers: ClassVar[dict] = {"data": "py"}
    ui_color = "#b4e0d2"

    def __init__(
        self,
        *,
        data: Any,
        conn_id: str,
        table: str,
        if_exists: str = "append",
        schema: str | None = None,
        chunksize: int = 10_000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_exists not in IF_EXISTS_MODES:
            raise ValueError(
                f"Task {self.task_id!r}: if_exists={if_exists!r} is not one of "
                f"{', '.join(repr(mode) for mode in IF_EXISTS_MODES)}."
            )
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"Task {self.task_id!r}: chunksize must be a positive int, got {chunksize!r}.")
        self.data = data
        self.conn_id = conn_id
        self.table = table
        self.if_exists = if_exists
        self.schema = schema
        self.chunksize = chunksize

    def get_db_hook(self) -> DbApiHook:
        """The connection's ``DbApiHook``; raises :class:`NotASqlConnectionError` otherwise."""
        return get_sql_hook(
            self.conn_id, hook_params=None, task_id=self.task_id, operator=type(self).__name__
        )

    def _target(self) -> tuple[str | None, str]:
        if self.schema is None and "." in self.table:
            schema, table = self.table.rsplit(".", 1)
            return schema, table
        return self.schema, self.table

    def execute(self, context: Context) -> dict[str, Any]:
        import pandas as pd

        frame = self.data
        if not isinstance(frame, pd.DataFrame):
            raise NotADataFrameError(
                f"Task {self.task_id!r}: data must be a pandas DataFrame, got {type(frame).__module__}."
                f"{type(frame).__qualname__}. Pass the upstream task's output (e.g. extract.output or "
                "the value a @task returns); a Jinja string renders to text unless the DAG sets "
                "render_template_as_native_obj=True."
            )
        hook = self.get_db_hook()
        if _is_snowflake(hook):
            rows = self._write_snowflake(hook, frame)
        else:
            rows = self._write_sqlalchemy(hook, frame)
        schema, table = self._target()
        return {"table": f"{schema}.{table}" if schema else table, "rows": rows, "conn_id": self.conn_id}

    def _where(self, schema: str | None, table: str) -> str:
        qualified = f"{schema}.{table}" if schema else table
        return f"table {qualified!r} on connection {self.conn_id!r}"

    def _write_sqlalchemy(self, hook: DbApiHook, frame: pd.DataFrame) -> int:
        from sqlalchemy import inspect

        schema, table = self._target()
        where = self._where(schema, table)
        engine = hook.get_sqlalchemy_engine()
        if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
            _make_sqlite_ddl_transactional(engine)
        multi_values, rows_per_statement = _insert_strategy(
            engine.dialect, len(frame.columns), self.chunksize
        )
        insert = _CountingInsert(multi_values)
        n_rows = len(frame)
        self.log.info(
            "Writing %d rows to %s (if_exists=%s, %d rows per %s INSERT), in one transaction",
            n_rows,
            where,
            self.if_exists,
            rows_per_statement,
            "multi-row" if multi_values else "executemany",
        )
        try:
            with engine.begin() as connection:
                if self.if_exists == "fail" and inspect(connection).has_table(table, schema=schema):
                    raise TargetTableExistsError(
                        f"Task {self.task_id!r}: {where} already exists and if_exists='fail'; "
                        "nothing was written. Use if_exists='append' or 'replace' to write to it."
                    )
                frame.to_sql(
                    table,
                    con=connection,
                    schema=schema,
                    if_exists=self.if_exists,  # type: ignore[arg-type]
                    index=False,
                    chunksize=rows_per_statement,
                    method=insert,
                )
        except TargetTableExistsError:
            raise
        except Exception as exc:
            root = _root_error(exc)
            raise DataFrameLoadError(
                f"Task {self.task_id!r}: writing {n_rows} rows to {where} "
                f"({engine.dialect.name}, if_exists={self.if_exists!r}) failed {insert.progress()}: "
                f"{_describe_error(root)}. The write ran in one transaction, which was rolled back: "
                f"none of the {n_rows} rows were kept and table {table!r} was left unchanged."
            ) from root
        finally:
            engine.dispose()
        self.log.info("Wrote %d rows to %s", n_rows, where)
        return n_rows

    def _snowflake_table_exists(self, connection: Any, schema: str | None, table: str) -> bool:
        # Case-insensitive on purpose: with if_exists="fail", refusing is the safe side.
        cursor = connection.cursor()
        try:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE UPPER(table_schema) = UPPER(COALESCE(%(schema)s, CURRENT_SCHEMA())) "
                "AND UPPER(table_name) = UPPER(%(table)s)",
                {"schema": schema, "table": table},
            )
            return bool(cursor.fetchone()[0])
        finally:
            cursor.close()

    def _write_snowflake(self, hook: DbApiHook, frame: pd.DataFrame) -> int:
        from snowflake.connector import pandas_tools

        schema, table = self._target()
        where = self._where(schema, table)
        n_rows = len(frame)
        n_chunks = math.ceil(n_rows / self.chunksize)
        connection = hook.get_conn()
        try:
            if self.if_exists == "fail" and self._snowflake_table_exists(connection, schema, table):
                raise TargetTableExistsError(
                    f"Task {self.task_id!r}: {where} already exists and if_exists='fail'; "
                    "nothing was written. Use if_exists='append' or 'replace' to write to it."
                )
            if n_rows == 0:
                return self._write_empty_snowflake(connection, schema, table, where)
            self.log.info(
                "Writing %d rows to %s with write_pandas (if_exists=%s, %d chunk(s) of up to %d rows)",
                n_rows,
                where,
                self.if_exists,
                n_chunks,
                self.chunksize,
            )
            try:
                success, loaded_chunks, loaded_rows, _ = pandas_tools.write_pandas(
                    connection,
                    # write_pandas never writes the index, and warns about any but a RangeIndex
                    frame.reset_index(drop=True),
                    table_name=table,
                    schema=schema,
                    chunk_size=self.chunksize,
                    auto_create_table=True,
                    overwrite=self.if_exists == "replace",
                    use_logical_type=True,
                )
            except Exception as exc:
                raise DataFrameLoadError(
                    f"Task {self.task_id!r}: writing {n_rows} rows ({n_chunks} chunk(s) of up to "
                    f"{self.chunksize} rows) to {where} with Snowflake's write_pandas "
                    f"(if_exists={self.if_exists!r}) failed: {_describe_error(exc)}. write_pandas loads "
                    "all staged chunks with a single COPY INTO ... ON_ERROR=ABORT_STATEMENT, which loads "
                    f"every row or none: 0 of the {n_rows} rows (0 of {n_chunks} chunks) were written "
                    f"and the rows of table {table!r} were left unchanged (if the table did not exist, "
                    "write_pandas may have created it empty)."
                ) from exc
        finally:
            connection.close()
        if not success or loaded_rows != n_rows:
            raise DataFrameLoadError(
                f"Task {self.task_id!r}: Snowflake's write_pandas reported success={success} writing to "
                f"{where}: {loaded_rows} of {n_rows} rows were written, in {loaded_chunks} of {n_chunks} "
                f"chunk(s). Those {loaded_rows} rows are now in table {table!r} (a Snowflake load is not "
                "one transaction with the rest of the task): check the table before re-running."
            )
        self.log.info("Wrote %d rows to %s in %d chunk(s)", loaded_rows, where, loaded_chunks)
        return n_rows

    def _write_empty_snowflake(self, connection: Any, schema: str | None, table: str, where: str) -> int:
        """write_pandas cannot infer a table from no rows: append is a no-op, replace truncates."""
        if self.if_exists != "replace":
            self.log.warning("The DataFrame is empty: nothing written to %s", where)
            return 0
        if not self._snowflake_table_exists(connection, schema, table):
            self.log.warning("The DataFrame is empty and %s does not exist: nothing written", where)
            return 0
        location = _snowflake_location(schema, table)
        cursor = connection.cursor()
        try:
            cursor.execute(f"TRUNCATE TABLE {location}")
        finally:
            cursor.close()
        self.log.warning("The DataFrame is empty: truncated %s (if_exists='replace')", where)
        return 0


def _snowflake_location(schema: str | None, table: str) -> str:
    """A table's location quoted the way ``write_pandas`` quotes it."""
    from snowflake.connector.pandas_tools import build_location_helper

    return build_location_helper(database=None, schema=schema, name=table, quote_identifiers=True)
