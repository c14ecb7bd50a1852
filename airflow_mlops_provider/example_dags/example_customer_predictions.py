"""The seeds' customer prediction pipeline: warehouse -> model -> checked scores -> warehouse.

The pipeline is 13 lines, ``@dag`` line included (the seed's Airflow version is about 80 lines, its
Aqueduct version 22): no serialization, S3 or connection-handling code.
"""

from __future__ import annotations

import pandas as pd
import pendulum
from airflow.sdk import dag

from airflow_mlops_provider import ml
from airflow_mlops_provider.example_dags._warehouse import FEATURES, WAREHOUSE, reference_model


@dag(schedule="0 8 * * *", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["mlops"])
def example_customer_predictions():
    customers = ml.sql("SELECT * FROM customers WHERE location = 'US'", conn_id=WAREHOUSE)

    @ml.task
    def predict(df: pd.DataFrame) -> pd.DataFrame:
        df["score"] = reference_model().predict_proba(df[FEATURES])[:, 1]
        return df

    @ml.check(severity="error")
    def scores_are_probabilities(df: pd.DataFrame) -> pd.Series:
        return df["score"].between(0, 1)

    predictions = predict(customers)
    save = ml.save(predictions, conn_id=WAREHOUSE, table="predictions", if_exists="replace")
    scores_are_probabilities(predictions) >> save


example_customer_predictions()
