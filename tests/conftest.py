"""Shared pytest fixtures."""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
_MNIST_NAMES = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")


def _has_mnist(directory):
    """True if ``directory`` (or its ``mnist/`` subdirectory) holds MNIST."""
    for d in (directory / "mnist", directory):
        if any((d / (n + ext)).is_file() for n in _MNIST_NAMES for ext in ("", ".gz")):
            return True
    return False


@pytest.fixture(scope="session")
def mnist_dir():
    """Directory with the real MNIST files: ``$FASTNN_DATA`` if set, else
    ``<repo>/../shared/data/mnist``; the test is skipped when neither has
    them. Pass it as ``load_mnist(path=mnist_dir)``."""
    candidates = []
    if os.environ.get("FASTNN_DATA"):
        # resolved now: tests run programs from other directories, where a relative path means nothing
        candidates.append(Path(os.environ["FASTNN_DATA"]).expanduser().resolve())
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    for c in candidates:
        if c.is_dir() and _has_mnist(c):
            return c
    pytest.skip("MNIST files not found (set FASTNN_DATA to a directory holding them)")
