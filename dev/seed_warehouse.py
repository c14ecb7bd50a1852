"""Create the sample ``customers`` table the example DAGs read (a SQLite file standing in for Snowflake)."""

from __future__ import annotations

import sqlite3
import sys

from airflow_mlops_provider.example_dags._warehouse import sample_customers


def main(path: str) -> None:
    with sqlite3.connect(path) as conn:
        sample_customers().to_sql("customers", conn, if_exists="replace", index=False)
    print(f"   customers: {len(sample_customers()):,} rows in {path}")


if __name__ == "__main__":
    main(sys.argv[1])
