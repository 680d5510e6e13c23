"""Adapters to optional dependencies (scikit-learn estimators, ONNX export, Ray), each importing its dependency lazily.

- :mod:`.ray_trainer` -- :class:`RayTrainer`, data-parallel training on Ray actors (public path:
  :mod:`fastnn.distributed`; ``pip install "fastnn[ray]"``).

Nothing in the core imports this package (enforced by ``tests/system/test_import_layering.py``).
"""
