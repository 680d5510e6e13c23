"""Experiments: check the guides' rules of thumb by measuring them.

:func:`sweep` trains every configuration of a grid (optimizer, learning rate,
batch size, activation, depth/width, regularization, layer type...) with
several seeds on one budget and returns a :class:`SweepResult`: a plain-text
table (mean ± std over seeds of the final and best validation metric, time to
a target, samples/s), plain-dict rows, CSV, loss curves and a plot::

    from fastnn.experiments import MLPFactory, sweep
    result = sweep(MLPFactory(784, 10), {"optimizer": ["sgd", "adam"], "lr": [0.1, 0.001]},
                   X, y, validation_data=(X_val, y_val), epochs=3, target=0.95)
    print(result.table())

The command line has it too: ``fastnn sweep --grid lr=0.1,0.001 --dataset digits``.
"""
from .datasets import DATASETS, load_dataset
from .grid import OPTIMIZER_NAMES, TRAINING_KEYS
from .networks import MLPFactory
from .result import SweepResult, read_csv
from .sweeper import MIN_PARALLEL_SECONDS, sweep

__all__ = ["sweep", "SweepResult", "read_csv", "MLPFactory", "load_dataset", "DATASETS", "TRAINING_KEYS",
           "OPTIMIZER_NAMES", "MIN_PARALLEL_SECONDS"]
