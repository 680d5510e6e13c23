"""Adapters to optional dependencies, each importing its dependency lazily (DESIGN rule 8).

- :mod:`fastnn.integrations.sklearn`: ``MLPClassifier`` / ``MLPRegressor``, scikit-learn drop-ins
  (public as :mod:`fastnn.sklearn`).

Nothing in the core imports this package (enforced by ``tests/system/test_import_layering.py``).
"""
