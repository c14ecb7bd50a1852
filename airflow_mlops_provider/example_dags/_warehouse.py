"""Shared bits of the example DAGs: the warehouse connection id and a reference model.

``dev/run-example.sh`` points the ``warehouse`` connection at a local SQLite file it fills with
sample customers; in production it is your Snowflake (or PostgreSQL...) connection.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

WAREHOUSE = "warehouse"
FEATURES = ["age", "tenure_months", "monthly_spend", "support_calls"]


def sample_customers(n: int = 2_000, seed: int = 7) -> pd.DataFrame:
    """Synthetic customers with a churn label that depends on the features."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "location": rng.choice(["US", "US", "US", "CA", "MX"], n),
            "age": rng.integers(18, 80, n),
            "tenure_months": rng.integers(1, 120, n),
            "monthly_spend": rng.gamma(2.0, 40.0, n).round(2),
            "support_calls": rng.poisson(1.5, n),
        }
    )
    risk = 0.04 * frame["support_calls"] - 0.01 * frame["tenure_months"] / 12 - 0.002 * frame["monthly_spend"]
    frame["churned"] = (risk + rng.normal(0, 0.05, n) > -0.08).astype(int)
    return frame


@cache
def reference_model():
    """A model fitted on sample data, as in the seed pipeline ("assume the model is trained")."""
    from sklearn.linear_model import LogisticRegression

    data = sample_customers(seed=1)
    return LogisticRegression(max_iter=1_000).fit(data[FEATURES], data["churned"])
