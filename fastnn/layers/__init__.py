"""Layers: each owns parameter views into the network's flat buffer."""
from .base import Layer, LAYER_TYPES, layer_from_config
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm, LayerNorm

__all__ = ["Layer", "Dense", "Dropout", "BatchNorm", "LayerNorm", "LAYER_TYPES", "layer_from_config"]
