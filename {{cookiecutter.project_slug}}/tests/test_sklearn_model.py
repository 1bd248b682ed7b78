"""What the service learns from a scikit-learn artifact, and what it trusts in one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io
from fastapi.testclient import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.model.loader import load_predictor
from {{ cookiecutter.project_slug }}.model.sklearn import _trusted, describe

from .test_batching import assert_batched_answers_are_the_answers_alone

FRAME = pd.DataFrame(
    {
        "age": [30.0, None, 52.0, 41.0, 25.0, 60.0],
        "seats": [1, 5, 2, 8, 1, 3],
        "plan": ["free", "pro", "team", "pro", "free", "team"],
    }
)
TARGET = ["stay", "churn", "stay", "churn", "stay", "churn"]


def pipeline(handle_unknown: str = "error") -> Any:
    return make_pipeline(
        ColumnTransformer(
            [
                ("age", make_pipeline(SimpleImputer(), StandardScaler()), ["age"]),
                ("seats", OneHotEncoder(handle_unknown=handle_unknown), ["seats"]),
                ("plan", OneHotEncoder(handle_unknown=handle_unknown), ["plan"]),
            ]
        ),
        LogisticRegression(),
    ).fit(FRAME, TARGET)


def test_a_dataframe_pipeline_describes_its_columns() -> None:
    signature, knows_names = describe(pipeline())
    assert knows_names and signature.named
    age, seats, plan = signature.features
    assert (age.type, age.nullable, age.categories) == ("number", True, None)
    assert (seats.type, seats.categories) == ("number", (1, 2, 3, 5, 8))
    assert (plan.type, plan.categories) == ("string", ("free", "pro", "team"))
    assert signature.classes == ("churn", "stay") and signature.probabilities


def test_an_encoder_that_ignores_unknowns_lists_no_categories() -> None:
    _, _, plan = describe(pipeline("ignore"))[0].features
    assert plan.type == "string" and plan.categories is None and plan.example == "free"


def test_a_plain_matrix_model_keeps_the_array_path() -> None:
    model = LogisticRegression().fit(np.eye(3), ["a", "b", "c"])
    signature, knows_names = describe(model)
    assert not knows_names and not signature.named
    assert signature.names == ["x0", "x1", "x2"]


def test_nullable_values_reach_the_imputer(
    make_settings: Any, tmp_path: Path, auth_headers: dict[str, str]
) -> None:
    artifact = tmp_path / "churn.skops"
    skops.io.dump(pipeline(), artifact)
    record = {"age": None, "seats": 5, "plan": "pro"}
    # The credentials were made against the same settings (database, keys, provider).
    with TestClient(create_app(make_settings(model_path=artifact)), headers=auth_headers) as client:
        response = client.post("/predict", json={"instances": [record]})
        assert response.status_code == 200, response.text
        assert response.json()["predictions"] == pipeline().predict(pd.DataFrame([record])).tolist()
        refused = client.post("/predict", json={"instances": [{**record, "seats": None}]})
        assert refused.status_code == 422, refused.text


def test_a_dataframe_pipeline_answers_in_a_batch_as_alone(tmp_path: Path) -> None:
    """Records of several requests become one DataFrame per model call, and each request
    still gets its own answers."""
    artifact = tmp_path / "churn.skops"
    skops.io.dump(pipeline(), artifact)
    plans, ages = ["free", "pro", "team"], [None, 18.0, 33.5, 47.0, 70.0]
    records = [
        {"age": ages[i % 5], "seats": [1, 2, 3, 5, 8][i % 5 - 1], "plan": plans[i % 3]}
        for i in range(40)
    ]
    requests = [records[i : i + 1 + i % 3] for i in range(30)]
    assert_batched_answers_are_the_answers_alone(load_predictor(artifact, "churn"), requests)


def test_scikit_learn_types_saved_by_older_skops_are_trusted() -> None:
    """skops before 0.12 wrote gradient boosting's Cython loss under its bare module name."""
    assert _trusted("sklearn.linear_model._logistic.LogisticRegression")
    assert _trusted("_loss.CyHalfBinomialLoss")
    assert not _trusted("_loss.NotInScikitLearn")
    assert not _trusted("os.system")
    assert not _trusted("builtins_evil.eval")


# --- model kinds beyond one table and one answer ----------------------------------------------


def test_a_text_pipeline_takes_documents() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    documents = ["good film", "bad film", "good story", "bad story"]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(documents, [1, 0, 1, 0])
    signature, named = describe(model)
    assert signature.documents and not named
    assert [(f.name, f.type) for f in signature.features] == [("text", "string")]


def test_several_outputs_are_described_per_output() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.multioutput import MultiOutputClassifier

    x = np.arange(40.0).reshape(20, 2)
    regressor, _ = describe(Ridge().fit(x, np.column_stack([x[:, 0], x[:, 1]])))
    assert regressor.task == "regression" and [o.name for o in regressor.outputs] == ["y0", "y1"]
    labels = np.column_stack([np.where(x[:, 0] > 20, "a", "b"), np.where(x[:, 1] > 9, "c", "d")])
    classifier, _ = describe(MultiOutputClassifier(LogisticRegression()).fit(x, labels))
    assert [o.classes for o in classifier.outputs] == [("a", "b"), ("c", "d")]
    assert classifier.classes == () and classifier.probabilities


def test_clusters_and_outliers_have_their_own_task() -> None:
    from sklearn.cluster import KMeans
    from sklearn.ensemble import IsolationForest

    x = np.random.default_rng(0).normal(size=(30, 2))
    clusters, _ = describe(KMeans(n_clusters=3, n_init=1, random_state=0).fit(x))
    assert clusters.task == "clustering" and clusters.classes == (0, 1, 2)
    outliers, _ = describe(IsolationForest(n_estimators=5, random_state=0).fit(x))
    assert outliers.task == "outlier_detection" and outliers.classes == (-1, 1)


def test_booleans_and_category_columns_are_typed() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    flags = pd.DataFrame({"flag": [True, False] * 5, "x": np.arange(10.0)})
    model = make_pipeline(
        ColumnTransformer([("f", OneHotEncoder(), ["flag"]), ("x", "passthrough", ["x"])]),
        LogisticRegression(),
    ).fit(flags, [0, 1] * 5)
    flag = describe(model)[0].features[0]
    assert flag.type == "boolean" and flag.categories == (False, True)

    shop = pd.DataFrame({"colour": pd.Categorical(["red", "blue"] * 10), "w": np.arange(20.0)})
    boosted = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=3)
    colour = describe(boosted.fit(shop, [0, 1] * 10))[0].features[0]
    assert colour.categorical and colour.categories == ("blue", "red")


def test_own_types_load_only_when_trusted() -> None:
    slug = "{{ cookiecutter.project_slug }}.preprocessing"
    for name in (f"{slug}.TimeOfWeek", f"{slug}.log1p_positive"):
        assert not _trusted(name)
        assert _trusted(name, (slug,)) and _trusted(name, (name,))
    assert not _trusted(f"{slug}_other.Thing", (slug,)), "a prefix is a module, not a string"
    assert _trusted("functools.partial")
