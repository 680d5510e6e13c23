"""Adapters to optional dependencies, each importing its dependency lazily (DESIGN rule 8).

- :mod:`.ray_trainer` -- :class:`RayTrainer`, data-parallel training on Ray actors (public path:
  :mod:`fastnn.distributed`; ``pip install "fastnn[ray]"``).
- :mod:`fastnn.integrations.sklearn`: ``MLPClassifier`` / ``MLPRegressor``, scikit-learn drop-ins
  (public as :mod:`fastnn.sklearn`).
- :mod:`fastnn.integrations.onnx`: ``export_onnx`` (public as :func:`fastnn.export_onnx` and
  ``fastnn export MODEL.fnn out.onnx``), a registry of converters keyed by layer class.

Nothing in the core imports this package (enforced by ``tests/system/test_import_layering.py``).
"""
