"""Adapters to optional dependencies (scikit-learn estimators, ONNX export, Ray), each importing its dependency lazily.

Empty for now. Nothing in the core imports this package (enforced by ``tests/system/test_import_layering.py``).
"""
