"""Layers: each owns parameter views into the network's flat buffer."""
from .base import Layer, LAYER_TYPES, layer_from_config
from .dense import Dense
from .dropout import Dropout

__all__ = ["Layer", "Dense", "Dropout", "LAYER_TYPES", "layer_from_config"]
