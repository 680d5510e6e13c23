"""scikit-learn drop-ins: ``from fastnn.sklearn import MLPClassifier, MLPRegressor``.

A thin public module; the estimators live in :mod:`fastnn.integrations.sklearn`.
"""
from .integrations.sklearn import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
