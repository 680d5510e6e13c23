"""Layers: each owns parameter views into the network's flat buffer and describes itself to the engine."""
from .base import Layer, LAYER_TYPES, PlanRow, layer_from_config
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm, LayerNorm
from .reshape import Flatten

__all__ = ["Layer", "PlanRow", "Dense", "Dropout", "BatchNorm", "LayerNorm", "Flatten", "LAYER_TYPES",
           "layer_from_config"]

# Convolutional networks (issue 11).
from .conv import Conv2D
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPool2D

MaxPooling2D = MaxPool2D  # the Keras alias
__all__ += ["Conv2D", "MaxPool2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D"]
