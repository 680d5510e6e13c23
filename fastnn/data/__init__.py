"""Datasets and preprocessing: IDX files (MNIST-format), MNIST, toy problems, splits and scaling."""
from .idx import read_idx, write_idx
from .mnist import DATASETS, cache_dir, load_mnist
from .preprocessing import (Standardizer, one_hot, scale_to_unit, split_indices, train_test_split,
                            train_val_split)
from . import augment, synthetic

__all__ = ["read_idx", "write_idx", "load_mnist", "cache_dir", "DATASETS", "Standardizer", "one_hot",
           "scale_to_unit", "split_indices", "train_test_split", "train_val_split", "synthetic", "augment"]
