"""Layers: each owns parameter views into the network's flat buffer and describes itself to the engine."""
from .base import Layer, LAYER_TYPES, PlanRow, layer_from_config
from .activation import Activation
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm, LayerNorm
from .reshape import Flatten
# sequence models (issue 12)
from .recurrent import GRU, LSTM, Bidirectional, SimpleRNN
from .sequence import Embedding, GlobalAveragePooling1D, Masking, PositionalEncoding, TimeDistributed
from .attention import MultiHeadAttention, TransformerBlock

__all__ = ["Layer", "PlanRow", "Activation", "Dense", "Dropout", "BatchNorm", "LayerNorm", "Flatten", "LAYER_TYPES",
           "layer_from_config",
           "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Embedding", "GlobalAveragePooling1D", "Masking",
           "PositionalEncoding", "TimeDistributed", "MultiHeadAttention", "TransformerBlock"]

# Convolutional networks (issue 11).
from .conv import Conv2D
from .pooling import AveragePooling2D, GlobalAveragePooling2D, MaxPool2D

MaxPooling2D = MaxPool2D  # the Keras alias
__all__ += ["Conv2D", "MaxPool2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D"]
