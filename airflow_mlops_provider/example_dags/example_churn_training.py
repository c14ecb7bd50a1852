"""Training with quality gates: extract, split, a hyperparameter sweep (dynamic task mapping),
per-candidate metrics, the best model evaluated with bounds and regression, a data check (warning),
a model check (error), and a deploy step that runs only if the error checks pass.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pendulum
from airflow.sdk import dag
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score

from airflow_mlops_provider import ml
from airflow_mlops_provider.example_dags._warehouse import FEATURES, WAREHOUSE


@dag(schedule="@weekly", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"), catchup=False, tags=["mlops"])
def example_churn_training():
    customers = ml.sql("SELECT * FROM customers", conn_id=WAREHOUSE)

    @ml.check(severity="warning")
    def features_complete(df: pd.DataFrame) -> ml.CheckResult:
        return ml.checks.not_null(df, columns=[*FEATURES, "churned"])

    @ml.task(multiple_outputs=True)
    def split(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
        test = df.sample(frac=0.25, random_state=0)
        return {"train": df.drop(test.index), "test": test}

    @ml.task
    def train(train: pd.DataFrame, C: float) -> LogisticRegression:
        return LogisticRegression(C=C, max_iter=1_000).fit(train[FEATURES], train["churned"])

    @ml.metric(lower={"accuracy": 0.5})
    def candidate_score(model: LogisticRegression, test: pd.DataFrame) -> dict[str, float]:
        return {"accuracy": accuracy_score(test["churned"], model.predict(test[FEATURES]))}

    @ml.task
    def pick_best(models: list[Any], scores: list[dict[str, float]]) -> LogisticRegression:
        return max(zip(models, scores, strict=False), key=lambda pair: pair[1]["accuracy"])[0]

    @ml.metric(
        lower={"accuracy": 0.7, "auc": 0.6},
        regression={"accuracy": ml.Regression(window=5, max_drop=0.02)},
        severity="warning",
    )
    def evaluate(model: LogisticRegression, test: pd.DataFrame) -> dict[str, float]:
        probabilities = model.predict_proba(test[FEATURES])[:, 1]
        return {
            "accuracy": accuracy_score(test["churned"], probabilities > 0.5),
            "auc": roc_auc_score(test["churned"], probabilities),
        }

    @ml.check(severity="error")
    def predictions_vary(model: LogisticRegression, test: pd.DataFrame) -> bool:
        return model.predict_proba(test[FEATURES])[:, 1].std() > 0.01

    @ml.task
    def deploy(model: LogisticRegression) -> str:
        return f"deployed {type(model).__name__}(C={model.C})"

    parts = split(customers)
    models = train.partial(train=parts["train"]).expand(C=[0.01, 0.1, 1.0, 10.0])
    scores = candidate_score.partial(test=parts["test"]).expand(model=models)
    best = pick_best(models, scores)
    gates = [features_complete(customers), predictions_vary(best, parts["test"])]
    evaluate(best, parts["test"])
    gates >> deploy(best)


example_churn_training()
