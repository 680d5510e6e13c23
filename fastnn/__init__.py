"""fastnn: fast, light neural-network training on the CPU.

Quick start::

    import fastnn as fnn
    net = fnn.Network([fnn.Dense(784, 256, "relu"), fnn.Dense(256, 10)], seed=0)
    trainer = fnn.Trainer(net, loss="cross_entropy", optimizer=fnn.Adam(1e-3), batch_size=64)
    history = trainer.fit(X_train, y_train, epochs=5, validation_data=(X_val, y_val))
    labels = net.predict(X_test)
"""
__version__ = "0.1.0"

from ._config import get_num_threads, set_num_threads
from .callbacks import (Callback, CSVLogger, Diagnostics, EarlyStopping, EpochLogger, GradientFlow,
                        LearningRateScheduler, LivePlot, ModelCheckpoint, ProgressBar, ReduceLROnPlateau,
                        TerminateOnNaN)
from .diagnostics import FastnnWarning
from .errors import (BackendUnavailableError, DataFormatError, FastnnError, ModelFormatError,
                     NonFiniteError, NotRegularFileError, ParameterError)
from .kernels import available_backends, get_backend
from .layers import Activation, BatchNorm, Dense, Dropout, Flatten, Layer, LayerNorm
# Convolutional networks (issue 11).
from .layers import AveragePooling2D, Conv2D, GlobalAveragePooling2D, MaxPool2D, MaxPooling2D
from .layers import (GRU, LSTM, Bidirectional, Embedding, GlobalAveragePooling1D,  # sequence models, issue 12
                     Masking, MultiHeadAttention, PositionalEncoding, SimpleRNN, TimeDistributed,
                     TransformerBlock)
from .losses import (BinaryCrossEntropy, CrossEntropy, FocalLoss, Huber, LabelSmoothingCrossEntropy, Loss,
                     MeanAbsoluteError, MeanSquaredError, WeightedCrossEntropy, balanced_class_weight, soft_targets)
from .network import Network
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .trainer import History, Trainer
from .schedules import Constant, CosineDecay, ExponentialDecay, OneCycle, Schedule, StepDecay
from .lr_finder import LRFinderResult, lr_find
from .profiler import ProfileReport, profile
from .io import load_checkpoint, save_checkpoint
from . import data, metrics
from . import experiments  # issue 16: sweeps that measure the guides' rules of thumb
from ._info import show_config


def export_onnx(network, path=None, **kwargs):
    """Write ``network`` as an ONNX model (opset 17, IR version 8); see :func:`fastnn.integrations.onnx.export_onnx`.

    Needs the ``onnx`` extra (``pip install "fastnn[onnx]"``); the adapter loads on the first call,
    never with ``import fastnn``.
    """
    from .integrations.onnx import export_onnx as _export_onnx

    return _export_onnx(network, path, **kwargs)

__all__ = [
    "Network", "Trainer", "History", "Dense", "Dropout", "BatchNorm", "LayerNorm", "Flatten", "Layer",
    "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Optimizer",
    "Loss", "CrossEntropy", "BinaryCrossEntropy", "MeanSquaredError", "MeanAbsoluteError", "Huber", "FocalLoss",
    "WeightedCrossEntropy", "LabelSmoothingCrossEntropy", "soft_targets", "balanced_class_weight",
    "Callback", "ProgressBar", "EpochLogger", "EarlyStopping", "ModelCheckpoint", "TerminateOnNaN",
    "CSVLogger", "LearningRateScheduler", "ReduceLROnPlateau", "LivePlot", "Diagnostics", "GradientFlow",
    "FastnnWarning",
    "save_checkpoint", "load_checkpoint", "lr_find", "LRFinderResult", "profile", "ProfileReport",
    "Schedule", "Constant", "StepDecay", "ExponentialDecay", "CosineDecay", "OneCycle", "data", "metrics",
    "experiments",
    "FastnnError", "DataFormatError", "ModelFormatError", "NonFiniteError", "BackendUnavailableError",
    "ParameterError", "NotRegularFileError",
    "get_backend", "available_backends", "set_num_threads", "get_num_threads", "show_config", "export_onnx",
    "SimpleRNN", "LSTM", "GRU", "Bidirectional", "Embedding", "GlobalAveragePooling1D", "Masking",
    "PositionalEncoding", "TimeDistributed", "MultiHeadAttention", "TransformerBlock",
]
__all__ += ["Conv2D", "MaxPool2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",  # issue 11
            "Activation"]
