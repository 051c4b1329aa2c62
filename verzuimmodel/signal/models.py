"""Risk models (scikit-learn pipelines) and the two ways of validating them.

Models
------
:class:`LogisticSpline`
    Ridge-penalised logistic regression (``LogisticRegression``, L2 penalty of strength
    ``1 / C``) on cubic B-splines (``SplineTransformer``) of ``log(1 + x)`` of every skewed
    feature, the counts entering linearly (standardised) and the 0/1 features as they are.
:class:`GradientBoosting`
    ``HistGradientBoostingClassifier`` on the raw features, deliberately small (few leaves, many
    pupils per leaf, a fixed number of iterations, no early stopping) because events are rare.

Neither reweights the classes, so the predicted risks are meant as probabilities.

Validation
----------
:class:`GroupedCV`
    ``GroupKFold`` by PO school: a school's pupils are all in the training part or all in the
    test part of a fold, so performance is measured on schools the model has not seen.
:class:`TemporalSplit`
    Train on the earlier cohorts, test on the later ones (never on a later cohort than it tests),
    as a model would be used: fitted on pupils whose VO outcome is known, applied to new ones.

:func:`cross_predict` gives every test pupil a risk from a model fitted without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, SplineTransformer, StandardScaler
from threadpoolctl import threadpool_limits

from .features import BINARY, CONTINUOUS, COUNTS, FEATURES

__all__ = ["LogisticSpline", "GradientBoosting", "ModelSpec", "MODELS", "SignalModel", "GroupedCV",
           "TemporalSplit", "Validation", "cross_predict"]


class ModelSpec(Protocol):
    """What a model specification provides: a ``name`` and an unfitted pipeline."""

    name: str

    def pipeline(self, random_state: int) -> Pipeline: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class LogisticSpline:
    """Penalised logistic regression with splines.

    Parameters
    ----------
    n_knots : int
        Knots of each spline (uniform over the training range of ``log(1 + x)``).
    degree : int
        Degree of the B-splines.
    C : float
        Inverse penalty strength of the L2 (ridge) penalty.
    max_iter : int
        Iterations of the solver (lbfgs).
    """

    n_knots: int = 4
    degree: int = 3
    C: float = 0.05
    max_iter: int = 2000
    name: str = "logistic_spline"

    def __post_init__(self):
        if self.n_knots < 2 or self.degree < 1 or self.C <= 0 or self.max_iter < 1:
            raise ValueError(f"invalid LogisticSpline options: {self}")

    def pipeline(self, random_state: int = 0) -> Pipeline:
        """The unfitted scikit-learn pipeline (deterministic: ``random_state`` is not used)."""
        splines = Pipeline([
            ("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
            ("spline", SplineTransformer(n_knots=self.n_knots, degree=self.degree, knots="uniform",
                                         extrapolation="constant")),
        ])
        columns = ColumnTransformer([
            ("splines", splines, list(CONTINUOUS)),
            ("counts", StandardScaler(), list(COUNTS)),
            ("binary", "passthrough", list(BINARY)),
        ])
        return Pipeline([("features", columns),
                         ("logistic", LogisticRegression(C=self.C, max_iter=self.max_iter))])

    def describe(self) -> str:
        """Plain-language description (for the model card)."""
        return (f"L2-penalised logistic regression (C = {self.C:g}) on cubic B-splines "
                f"({self.n_knots} uniform knots, degree {self.degree}) of log(1 + x) of the rates, "
                "standardised counts and 0/1 covariates (scikit-learn SplineTransformer + LogisticRegression)")


@dataclass(frozen=True)
class GradientBoosting:
    """Histogram gradient boosting, kept small for a rare outcome.

    Parameters
    ----------
    learning_rate, max_iter, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to ``HistGradientBoostingClassifier`` (``early_stopping=False``).
    """

    learning_rate: float = 0.03
    max_iter: int = 100
    max_leaf_nodes: int = 6
    min_samples_leaf: int = 150
    l2_regularization: float = 1.0
    name: str = "gradient_boosting"

    def __post_init__(self):
        if self.learning_rate <= 0 or self.max_iter < 1 or self.max_leaf_nodes < 2 or self.min_samples_leaf < 1:
            raise ValueError(f"invalid GradientBoosting options: {self}")

    def pipeline(self, random_state: int = 0) -> Pipeline:
        """The unfitted scikit-learn pipeline."""
        columns = ColumnTransformer([("all", "passthrough", list(FEATURES))])
        hgb = HistGradientBoostingClassifier(
            learning_rate=self.learning_rate, max_iter=self.max_iter, max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf, l2_regularization=self.l2_regularization,
            early_stopping=False, random_state=random_state)
        return Pipeline([("features", columns), ("boosting", hgb)])

    def describe(self) -> str:
        """Plain-language description (for the model card)."""
        return (f"histogram gradient boosting (scikit-learn HistGradientBoostingClassifier: {self.max_iter} "
                f"iterations, learning rate {self.learning_rate:g}, at most {self.max_leaf_nodes} leaves of "
                f"at least {self.min_samples_leaf} pupils, L2 {self.l2_regularization:g}, no early stopping)")


MODELS: dict[str, ModelSpec] = {m.name: m for m in (LogisticSpline(), GradientBoosting())}
"""The default model specifications, by name."""


def _spec(model: str | ModelSpec) -> ModelSpec:
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"unknown model '{model}'; expected one of {', '.join(MODELS)} or a ModelSpec")
        return MODELS[model]
    return model


def _check(data: pd.DataFrame, need_label: bool) -> None:
    missing = [c for c in FEATURES if c not in data.columns]
    if missing:
        raise ValueError(f"the data lack feature column(s) {missing}; build them with verzuimmodel.signal.features")
    if any(c.endswith("_true") for c in data.columns):
        raise ValueError("the data hold simulated true values (*_true); a signal model may use recorded data only")
    if need_label:
        if "event" not in data.columns:
            raise ValueError("the data lack the 'event' column")
        if data["event"].isna().any():
            raise ValueError("'event' is missing for some rows: fit on labelled pupils only (labelled == True)")
        y = data["event"].to_numpy(dtype=int)
        if y.min() == y.max():
            raise ValueError("the training data hold only one class of 'event'")


class SignalModel:
    """A risk model: a scikit-learn pipeline fitted on the analysis table.

    Parameters
    ----------
    spec : str or ModelSpec
        ``"logistic_spline"``, ``"gradient_boosting"`` or a specification such as
        ``LogisticSpline(C=0.1)``.
    random_state : int
        Passed to the pipeline (the only randomness; the default models are deterministic).
    n_threads : int or None
        Threads for the numerical libraries while fitting and predicting (default 1: the tables
        are small and more threads on a shared machine mostly wait for each other); None leaves
        them as they are.

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
        The fitted pipeline.
    n_train_, n_events_ : int
        Pupils and events it was fitted on.
    """

    def __init__(self, spec: str | ModelSpec = "logistic_spline", random_state: int = 0, n_threads: int | None = 1):
        self.spec = spec
        self.random_state = random_state
        self.n_threads = n_threads

    @property
    def name(self) -> str:
        return _spec(self.spec).name

    def fit(self, data: pd.DataFrame) -> SignalModel:
        """Fit on labelled pupils (rows of :func:`~verzuimmodel.signal.features` with ``labelled``)."""
        _check(data, need_label=True)
        spec = _spec(self.spec)
        y = data["event"].to_numpy(dtype=int)
        with threadpool_limits(self.n_threads):
            self.pipeline_ = spec.pipeline(int(self.random_state)).fit(data[list(FEATURES)], y)
        self.n_train_ = int(len(y))
        self.n_events_ = int(y.sum())
        return self

    def predict_risk(self, data: pd.DataFrame) -> np.ndarray:
        """Predicted probability of long-term absence in VO for each row."""
        if not hasattr(self, "pipeline_"):
            raise RuntimeError("the model is not fitted; call fit first")
        _check(data, need_label=False)
        with threadpool_limits(self.n_threads):
            return self.pipeline_.predict_proba(data[list(FEATURES)])[:, 1]


class Validation(Protocol):
    """A validation scheme: a ``name`` and ``split(data)`` yielding train and test row positions."""

    name: str

    def split(self, data: pd.DataFrame) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class GroupedCV:
    """K-fold cross-validation grouped by PO school (``GroupKFold``, deterministic).

    Every row is in exactly one test part; no PO school is in the training and test part of the
    same fold.
    """

    n_splits: int = 5
    group: str = "po_school_id"
    name: str = "grouped_cv"

    def __post_init__(self):
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {self.n_splits}")

    def split(self, data: pd.DataFrame) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` row positions of each fold.

        Parameters
        ----------
        data : pandas.DataFrame
            Holds the column ``group`` (default ``po_school_id``).
        """
        groups = data[self.group].to_numpy()
        n_groups = len(np.unique(groups))
        if n_groups < self.n_splits:
            raise ValueError(f"grouped CV with {self.n_splits} folds needs at least as many schools, got {n_groups}")
        yield from GroupKFold(n_splits=self.n_splits).split(np.zeros(len(data)), groups=groups)

    def describe(self) -> str:
        """Plain-language description (for the model card)."""
        return f"{self.n_splits}-fold cross-validation grouped by PO school (GroupKFold)"


@dataclass(frozen=True)
class TemporalSplit:
    """Train on earlier cohorts, test on later ones.

    Parameters
    ----------
    n_test_cohorts : int
        The last this many cohorts (of those in the data) form the test part.
    first_test_cohort : int, optional
        Instead: test on cohorts from this one on, train on the earlier ones.
    """

    n_test_cohorts: int = 3
    first_test_cohort: int | None = None
    name: str = "temporal"

    def __post_init__(self):
        if self.n_test_cohorts < 1:
            raise ValueError(f"n_test_cohorts must be at least 1, got {self.n_test_cohorts}")

    def cutoff(self, cohorts) -> int:
        """The first test cohort for the given cohorts."""
        years = np.unique(np.asarray(cohorts, dtype=int))
        if self.first_test_cohort is not None:
            first = int(self.first_test_cohort)
        else:
            if len(years) <= self.n_test_cohorts:
                raise ValueError(f"a temporal split with {self.n_test_cohorts} test cohorts needs more cohorts; "
                                 f"the data hold {len(years)}")
            first = int(years[-self.n_test_cohorts])
        if not (years < first).any() or not (years >= first).any():
            raise ValueError(f"first test cohort {first} leaves no training or no test cohorts in {list(years)}")
        return first

    def split(self, data: pd.DataFrame) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the one ``(train, test)`` pair of row positions: cohorts before / from :meth:`cutoff`.

        Parameters
        ----------
        data : pandas.DataFrame
            Holds the column ``cohort``.
        """
        c = data["cohort"].to_numpy(dtype=int)
        first = self.cutoff(c)
        yield np.flatnonzero(c < first), np.flatnonzero(c >= first)

    def describe(self) -> str:
        """Plain-language description (for the model card)."""
        which = (f"cohorts from {self.first_test_cohort} on" if self.first_test_cohort is not None
                 else f"the last {self.n_test_cohorts} cohorts")
        return f"temporal split: trained on the earlier cohorts, tested on {which}"


def cross_predict(data: pd.DataFrame, model: str | ModelSpec, validation: Validation,
                  random_state: int = 0, n_threads: int | None = 1) -> pd.Series:
    """Risk of every test row from a model fitted on the training rows of its split.

    Parameters
    ----------
    data : pandas.DataFrame
        Labelled pupils (features and ``event``).
    model : str or ModelSpec
    validation : GroupedCV or TemporalSplit
    random_state : int
    n_threads : int or None
        See :class:`SignalModel`.

    Returns
    -------
    pandas.Series
        Indexed like ``data``; NaN for rows never in a test part (the training cohorts of a
        temporal split).
    """
    risk = np.full(len(data), np.nan)
    for train, test in validation.split(data):
        m = SignalModel(model, random_state=random_state, n_threads=n_threads).fit(data.iloc[train])
        risk[test] = m.predict_risk(data.iloc[test])
    return pd.Series(risk, index=data.index, name=_spec(model).name)
