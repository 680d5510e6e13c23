"""Compiled Cython extensions (built from csrc/ by setup.py)."""
