"""Sweep grids: which keys a grid may hold, checking their values, expanding them into configurations.

A grid is either a dict of lists (every combination is trained, in
``itertools.product`` order of the keys as given) or a list of dicts (exactly
these configurations, e.g. each optimizer at its own learning rate). Keys
are the training settings below (:data:`TRAINING_KEYS`) or the keyword
arguments of the network factory (``make_network(seed=..., **network_keys)``);
anything else is an error before the first run starts.
"""
import inspect
import itertools
import numbers

from .. import optimizers as _optimizers
from .._validation import Integer, OneOf, Real
from ..errors import ParameterError

#: Optimizers a grid names. ``sgd_momentum`` is SGD with momentum 0.9 (the guides' "SGD + Momentum");
#: the rest are :mod:`fastnn.optimizers` with their default hyper-parameters.
OPTIMIZER_NAMES = ("sgd", "sgd_momentum", "adam", "adamw", "rmsprop", "adagrad")


class _BatchSize(Integer):
    """A positive integer, or ``'full'``: the whole training set per step (batch gradient descent)."""

    def __init__(self):
        super().__init__(1)

    def check(self, value, name):
        if value == "full":
            return "full"
        return super().check(value, name)

    def describe(self):
        return "a positive integer or 'full' (the whole training set)"


#: The training settings a grid may vary, each with the rule its values must follow.
TRAINING_KEYS = {
    "optimizer": OneOf(OPTIMIZER_NAMES, noun="optimizer"),
    "lr": Real(0, lo_open=True),
    "batch_size": _BatchSize(),
    "momentum": Real(0, 1, hi_open=True),
    "weight_decay": Real(0),
    "clip_norm": Real(0, lo_open=True),
}

_PLAIN = (str, bool, numbers.Real, type(None))


def _plain(value):
    """Whether ``value`` is a plain value a table and a CSV file can show (tuples of them too)."""
    if isinstance(value, tuple):
        return all(isinstance(v, _PLAIN) for v in value)
    return isinstance(value, _PLAIN)


def network_keys(make_network):
    """``(names, takes_any)``: the keyword arguments ``make_network`` accepts besides ``seed``.

    Raises
    ------
    ParameterError
        When ``make_network`` is not callable or cannot take ``seed=`` as a keyword.
    """
    if not callable(make_network):
        raise ParameterError(f"make_network must be a callable make_network(seed=..., **network_keys) "
                             f"returning a Network, not {make_network!r}"[:300])
    try:
        params = inspect.signature(make_network).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return set(), True
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params)
    names = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    if "seed" not in names and not takes_any:
        raise ParameterError("make_network must accept the keyword argument seed= (each run builds its "
                             "network with its own seed)")
    return names - {"seed"}, takes_any


def _check_value(key, value, where, known_net, takes_any):
    if key == "seed":
        raise ParameterError("seed is not a grid key: give the seeds of every configuration with sweep(seeds=...)")
    if key in TRAINING_KEYS:
        return TRAINING_KEYS[key].check(value, where)
    if key not in known_net and not takes_any:
        raise ParameterError(f"unknown grid key {key!r}: not a training setting ({sorted(TRAINING_KEYS)}) "
                             f"and not a keyword argument of make_network ({sorted(known_net)})")
    if isinstance(value, list):
        value = tuple(value)  # hidden=[128, 64] from a JSON file
    if not _plain(value):
        raise ParameterError(f"{where} must be a plain value (str, number, bool, None or a tuple of them), "
                             f"not {type(value).__name__} {value!r}"[:300])
    return value


def expand_grid(grid, make_network):
    """The list of configurations (dicts, keys in grid order) that ``grid`` describes, each value checked.

    Raises
    ------
    ParameterError
        (a ``ValueError`` and a ``TypeError``) for an unknown key, an empty list, a value of the
        wrong type or out of range, a grid that is neither a dict of lists nor a list of dicts,
        or two identical configurations.
    """
    known_net, takes_any = network_keys(make_network)
    if isinstance(grid, dict):
        if not grid:
            raise ParameterError("the grid is empty: give at least one key with a list of values, "
                                 "e.g. {'lr': [0.1, 0.01]}")
        for key, values in grid.items():
            if not isinstance(key, str):
                raise ParameterError(f"grid keys must be strings, not {key!r}")
            if not isinstance(values, (list, tuple)):
                raise ParameterError(f"grid[{key!r}] must be a list of values, e.g. [{values!r}], "
                                     f"not {type(values).__name__}"[:300])
            if len(values) == 0:
                raise ParameterError(f"grid[{key!r}] is an empty list: give at least one value")
        checked = {key: [_check_value(key, v, f"grid[{key!r}][{i}]", known_net, takes_any)
                         for i, v in enumerate(values)] for key, values in grid.items()}
        configs = [dict(zip(checked, combo)) for combo in itertools.product(*checked.values())]
    elif isinstance(grid, (list, tuple)):
        if not grid:
            raise ParameterError("the grid is an empty list: give at least one configuration (a dict)")
        configs = []
        for i, config in enumerate(grid):
            if not isinstance(config, dict):
                raise ParameterError(f"grid[{i}] must be a dict of settings, not {type(config).__name__}")
            for key in config:
                if not isinstance(key, str):
                    raise ParameterError(f"grid[{i}] keys must be strings, not {key!r}")
            configs.append({key: _check_value(key, v, f"grid[{i}][{key!r}]", known_net, takes_any)
                            for key, v in config.items()})
    else:
        raise ParameterError(f"grid must be a dict of lists or a list of dicts, not {type(grid).__name__}")
    seen = set()
    for config in configs:
        if config.get("momentum") and config.get("optimizer", "adam") != "sgd":
            raise ParameterError(f"momentum applies to optimizer 'sgd' only, not to {config.get('optimizer', 'adam')!r}"
                                 f" (configuration {config}); use a list of configurations to pair them")
        key = tuple(sorted((k, repr(v)) for k, v in config.items()))
        if key in seen:
            raise ParameterError(f"the grid repeats the configuration {config}")
        seen.add(key)
    return configs


def split_config(config):
    """``(training, network)``: the training settings of a configuration and the network factory's keys."""
    training = {k: v for k, v in config.items() if k in TRAINING_KEYS}
    network = {k: v for k, v in config.items() if k not in TRAINING_KEYS}
    return training, network


def make_optimizer(training, defaults):
    """The optimizer a configuration's training settings describe (``defaults`` fill what it leaves out)."""
    settings = {**defaults, **training}
    name = settings.get("optimizer", "adam")
    kwargs = {}
    if "lr" in settings:
        kwargs["lr"] = settings["lr"]
    if "weight_decay" in settings:
        kwargs["weight_decay"] = settings["weight_decay"]
    if name == "sgd_momentum":
        return _optimizers.SGD(momentum=settings.get("momentum", 0.9), **kwargs)
    if name == "sgd" and settings.get("momentum"):
        kwargs["momentum"] = settings["momentum"]
    return type(_optimizers.get(name))(**kwargs)


def config_label(config):
    """A short readable label of a configuration: ``optimizer=adam lr=0.001``."""
    return " ".join(f"{k}={format_value(v)}" for k, v in config.items()) or "(defaults)"


def format_value(value):
    """A value as tables and CSV files show it: ``0.001``, ``adam``, ``128-64`` for a tuple."""
    if isinstance(value, tuple):
        return "-".join(format_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
