"""Inverted dropout: zero a random fraction of activations in training, scale the rest."""
import hashlib
import json

import numpy as np

from .._validation import InstanceOf, Integer, Param, Real
from ..kernels import get_backend
from ..kernels.codes import OP_DROPOUT
from .base import Layer, PlanRow, register


@register
class Dropout(Layer):
    """Inverted dropout (identity at inference).

    Masks are counter-based: the mask of a training step depends on the layer's
    key, the step number and the sample's row in the batch only, so the fused
    driver, the per-layer path and any number of row shards draw the same masks,
    and a resumed run draws the masks an uninterrupted one would.

    Parameters
    ----------
    rate : float
        Fraction of units dropped in training, in [0, 1).
    n_units : int, optional
        Width; inferred from the previous layer when built into a Network.

    Attributes
    ----------
    rng : numpy.random.Generator
        Its state is the key of the layer's mask stream (set by the Network from
        its seed; checkpoints store it). It is never advanced.
    step : int
        Step number of the next training-mode forward; the trainer sets it to the
        optimizer step, standalone ``forward(training=True)`` calls count up.
    """

    rate = Param(Real(0, 1, hi_open=True))
    n_inputs = Param(Integer(1, optional=True), label="n_units")
    n_outputs = Param(Integer(1, optional=True), label="n_outputs")
    rng = Param(InstanceOf(np.random.Generator))
    step = Param(Integer(0))

    #: row of the batch that X's first row is: a row shard (fastnn.engine.sharded) draws its rows' masks
    row0 = 0

    def __init__(self, rate, n_units=None):
        self.rate = rate
        self.n_inputs = self.n_outputs = n_units
        self.rng = np.random.default_rng()
        self.step = 0

    @property
    def key(self):
        """63-bit key of the mask stream, derived from the generator's state."""
        state = json.dumps(self.rng.bit_generator.state, sort_keys=True, default=str).encode()
        return int.from_bytes(hashlib.blake2b(state, digest_size=8).digest(), "little") >> 1

    def build(self, input_shape):
        width = int(np.prod(input_shape))
        super().build(input_shape)
        self.n_inputs = self.n_outputs = width

    def plan_rows(self, fuse_activation=None):
        """One OP_DROPOUT row (its Z block holds the mask, reused by backward); none at rate 0."""
        if self.rate == 0:
            return []
        return [PlanRow(op=OP_DROPOUT, n_in=self.n_inputs, n_out=self.n_outputs, floats={"rate": self.rate},
                        seed=self.key)]

    def forward(self, X, training=False, backend=None):
        self.output_mask = self.incoming_mask()  # a padding mask (sequence layers) passes through
        if not training or self.rate == 0:
            self._mask = None
            return X
        mask = self._buffer("mask", X.shape, X.dtype)
        out = self._buffer("out", X.shape, X.dtype)
        # mask holds 0 or 1/keep, so backward is one multiply.
        get_backend(backend).dropout_forward(X, self.key, self.step, self.row0, self.rate, mask, out)
        self.step += 1
        self._mask = mask
        return out

    def backward(self, dA, backend=None, need_dX=True):
        if self._mask is None:
            return dA
        dX = self._buffer("dX", dA.shape, dA.dtype)
        np.multiply(dA, self._mask, out=dX)
        return dX

    def get_config(self):
        return {"rate": self.rate, "n_units": self.n_inputs}
