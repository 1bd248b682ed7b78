"""Preprocessing steps of your own, for the pipelines this service loads.

A skops file records every type it holds, and the service refuses to load a type it was not
told to trust: loading runs that type's code. scikit-learn, NumPy and SciPy are trusted; code of
your own is trusted once its module is named in ``APP_MODEL_TRUSTED_TYPES``, for this module
``APP_MODEL_TRUSTED_TYPES={{ cookiecutter.project_slug }}.preprocessing``. Keep such code here (or in
a package installed with the service), import it from here when you train, and the pipeline
finds the same function or class when the service loads it. Pickle stays refused.

The two steps below are examples to keep, change or delete: a function for a
``FunctionTransformer`` and a transformer class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


def log1p_positive(values: Any) -> Any:
    """``log(1 + x)`` of amounts, with negative amounts counted as zero."""
    return np.log1p(np.clip(np.asarray(values, dtype=np.float64), 0, None))


class TimeOfWeek(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Datetime columns as the hour of the day (0-23) and the day of the week (0-6) of each."""

    def fit(self, frame: Any, y: Any = None) -> TimeOfWeek:
        self.n_features_in_ = pd.DataFrame(frame).shape[1]
        return self

    def transform(self, frame: Any) -> Any:
        columns = []
        for _, column in pd.DataFrame(frame).items():
            stamps = pd.to_datetime(column)
            columns += [stamps.dt.hour.to_numpy(), stamps.dt.dayofweek.to_numpy()]
        return np.column_stack(columns).astype(np.float64)
