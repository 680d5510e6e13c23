"""A picklable network factory for sweeps: multi-layer perceptrons whose shape and parts a grid varies."""
from .._validation import Boolean, Integer, Param, Real
from ..activations import CONSTRAINT as _ACTIVATION
from ..errors import ParameterError
from ..layers import BatchNorm, Dense, Dropout
from ..network import Network


class MLPFactory:
    """``make_network`` for :func:`fastnn.experiments.sweep`: builds ``n_inputs -> hidden... -> n_outputs``.

    The constructor sets the defaults; a sweep's grid overrides any of them per configuration
    (``factory(seed=0, activation='tanh', depth=3)``). Module-level and plain, so it pickles to
    worker processes.

    Parameters
    ----------
    n_inputs, n_outputs : int
    hidden : tuple of int, default (128,)
        Hidden widths. A grid may give ``depth`` and ``width`` instead (``depth`` layers of ``width``).
    activation : str, default 'relu'
        Of the hidden layers; the output layer is linear (logits for the fused losses).
    dropout : float, default 0
        Dropout rate after every hidden layer (0: none).
    batch_norm : bool, default False
        BatchNorm after every hidden layer (on its activated output).
    l2 : float, default 0
        L2 penalty on every Dense layer's weights.
    """

    n_inputs = Param(Integer(1))
    n_outputs = Param(Integer(1))
    activation = Param(_ACTIVATION)
    dropout = Param(Real(0, 1, hi_open=True))
    batch_norm = Param(Boolean())
    l2 = Param(Real(0))

    def __init__(self, n_inputs, n_outputs, hidden=(128,), activation="relu", dropout=0.0, batch_norm=False,
                 l2=0.0):
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.hidden = _check_hidden(hidden)
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.l2 = l2

    def __repr__(self):
        return (f"MLPFactory({self.n_inputs}, {self.n_outputs}, hidden={self.hidden}, "
                f"activation={self.activation!r}, dropout={self.dropout}, batch_norm={self.batch_norm}, "
                f"l2={self.l2})")

    def __call__(self, seed=None, *, hidden=None, depth=None, width=None, activation=None, dropout=None,
                 batch_norm=None, l2=None):
        """A new Network with these settings (None: the factory's default), weights seeded by ``seed``."""
        settings = MLPFactory(self.n_inputs, self.n_outputs, self.hidden if hidden is None else hidden,
                              self.activation if activation is None else activation,
                              self.dropout if dropout is None else dropout,
                              self.batch_norm if batch_norm is None else batch_norm,
                              self.l2 if l2 is None else l2)  # checks every value
        if depth is not None or width is not None:
            depth = Integer(0).check(len(settings.hidden) if depth is None else depth, "MLPFactory depth")
            width = Integer(1).check(settings.hidden[0] if width is None and settings.hidden else
                                     (width or 128), "MLPFactory width")
            settings.hidden = (width,) * depth
        layers = []
        n_in = settings.n_inputs
        for units in settings.hidden:
            layers.append(Dense(n_in, units, settings.activation, l2=settings.l2))
            if settings.batch_norm:
                layers.append(BatchNorm(units))
            if settings.dropout:
                layers.append(Dropout(settings.dropout))
            n_in = units
        layers.append(Dense(n_in, settings.n_outputs, l2=settings.l2))
        return Network(layers, seed=seed)


def _check_hidden(hidden):
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        widths = tuple(hidden)
    except TypeError:
        widths = None
    if widths is None or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ParameterError(f"MLPFactory hidden must be a tuple of positive integers, not {hidden!r}"[:300])
    return widths
