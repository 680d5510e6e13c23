"""Distributed training: the public path of :mod:`fastnn.integrations.ray_trainer` (``pip install "fastnn[ray]"``).

Importing this module does not import Ray; a :class:`RayTrainer` does at its first ``fit``.
"""
from .integrations.ray_trainer import RayProfile, RayProfileReport, RayTrainer, WorkerError, scaling_estimate

__all__ = ["RayTrainer", "RayProfile", "RayProfileReport", "WorkerError", "scaling_estimate"]
