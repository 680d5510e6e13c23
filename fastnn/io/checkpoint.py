"""Training checkpoints: a model file plus the state an exact continuation needs.

A checkpoint is a model file (see :mod:`fastnn.io.container`: JSON header + raw arrays,
no pickle) that also holds what an exact continuation needs:

- the optimizer state (Adam moments, ...) as the tensor ``optimizer.state``,
  its class name, hyper-parameters and step count (which drives a
  learning-rate schedule);
- the learning rate: a float, or for a schedule its repr and, for
  :mod:`fastnn.schedules` objects, its config (a callable itself is never
  stored: the resuming trainer is built with the same schedule, and a warning
  says when it differs; a schedule with ``state_dict``/``load_state_dict`` has
  that state stored too);
- the epoch counter and the shuffling RNG state (``Trainer.state_dict()``),
  the RNG state of random layers (dropout);
- the state of the trainer's callbacks that have ``state_dict`` (e.g. the best
  value a :class:`ModelCheckpoint` has seen);
- the epoch's logs (loss, val_loss, ...) and free-form string metadata.

Resuming::

    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=64, seed=0)
    trainer.fit(X, y, epochs=10, resume_from="last.ckpt")   # continues to epoch 10

Continuing a *saved model* with a new learning rate is a fresh start of the
optimizer instead::

    net = fnn.Network.load("best.fnn")
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(1e-4), batch_size=64)   # e.g. 10x lower
    trainer.fit(X, y, epochs=3)

(or, from a checkpoint, ``load_checkpoint(path, trainer)`` and then set
``trainer.optimizer.lr`` before calling ``fit`` without ``resume_from``).
"""
import copy
import json
import math
import numbers
import re
import warnings

import numpy as np

from ..errors import ModelFormatError, NonFiniteError
from .container import DTYPES, _is_int, _open_validated, read_tensor, write_file
from .model_file import (_check_metadata, _check_optimizer_state, _check_params_table, _load_network_from, _net_slots,
                         _size, build_layers, check_values, network_config, param_tensors)

__all__ = ["save_checkpoint", "load_checkpoint", "ModelCheckpoint"]

_RNG_NAMES = ("PCG64",)
_LAYER_INDEX = re.compile(r"(0|[1-9][0-9]{0,8})")


def _jsonable(value, what):
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not plain JSON data and cannot go into a checkpoint: {exc}") from exc


def _rng_state(rng):
    state = rng.bit_generator.state
    if state.get("bit_generator") not in _RNG_NAMES:
        raise ValueError(f"only {_RNG_NAMES} generators can be checkpointed, not {state.get('bit_generator')!r}")
    return _jsonable(state, "the RNG state")


def _finite_logs(logs):
    out = {}
    for key, value in (logs or {}).items():
        if isinstance(key, str) and isinstance(value, numbers.Real) and not isinstance(value, bool) \
                and math.isfinite(value):
            out[key] = float(value)
    return out


def save_checkpoint(path, trainer, *, metadata=None, logs=None):
    """Save a trainer's network and training state to one file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    trainer : Trainer
    metadata : dict of str -> str, optional
        Free-form annotations (see :func:`fastnn.io.read_header`).
    logs : dict, optional
        The epoch's metrics (finite numbers are kept), for information.
    """
    from .. import __version__

    net = trainer.network
    state = dict(trainer.state_dict())
    opt_state = dict(state.pop("optimizer"))
    arr = opt_state.pop("state", None)
    if arr is not None:
        arr = np.asarray(arr)
        if arr.dtype != net.params.dtype or arr.ndim != 2 or arr.shape[1] != net.n_params:
            raise ValueError(f"optimizer state of shape {arr.shape} {arr.dtype} does not fit the network "
                             f"({net.n_params} {net.params.dtype} parameters)")
    check_finite_state(net, arr, path)
    if "rng_state" in state:
        state["rng_state"] = _rng_state(trainer.rng)
    opt = trainer.optimizer
    lr = {"value": None if callable(opt.lr) else float(opt.lr),
          "schedule": repr(opt.lr) if callable(opt.lr) else None,
          "current": float(opt.current_lr)}
    if callable(opt.lr) and callable(getattr(opt.lr, "to_config", None)):
        lr["schedule_config"] = _jsonable(opt.lr.to_config(), "the learning-rate schedule config")
    if callable(opt.lr) and callable(getattr(opt.lr, "state_dict", None)):
        lr["schedule_state"] = _jsonable(opt.lr.state_dict(), "the learning-rate schedule state")
    layer_rngs = {str(i): _rng_state(layer.rng) for i, layer in enumerate(net.layers)
                  if isinstance(getattr(layer, "rng", None), np.random.Generator)}
    callbacks = []
    for i, cb in enumerate(getattr(trainer, "callbacks", None) or []):
        if callable(getattr(cb, "state_dict", None)):
            callbacks.append({"index": i, "class": type(cb).__name__,
                              "state": _jsonable(cb.state_dict(), f"the state of callback {type(cb).__name__}")})
    training = {
        "trainer": _jsonable(state, "Trainer.state_dict()"),
        "optimizer": _jsonable(dict(opt_state, has_state=arr is not None), "the optimizer state"),
        "lr": lr,
        "layer_rngs": layer_rngs,
        "callbacks": callbacks,
        "logs": _finite_logs(logs),
    }
    header = {"kind": "checkpoint", "fastnn_version": __version__, "network": network_config(net),
              "metadata": _check_metadata(metadata), "training": training}
    tensors = param_tensors(net)
    if arr is not None:
        tensors.append(("optimizer.state", arr))
    write_file(path, header, tensors)


def check_finite_state(net, opt_state=None, path=None):
    """Raise NonFiniteError if the weights, buffers or optimizer state hold NaN/Inf:
    a checkpoint must never replace a good file with a poisoned one."""
    bad = [what for what, a in (("weights", net.params), ("buffers", getattr(net, "buffers", None)),
                                ("optimizer state", opt_state))
           if a is not None and a.size and not np.isfinite(a).all()]
    if bad:
        raise NonFiniteError(f"refusing to save {path or 'a checkpoint'}: the {' and '.join(bad)} hold NaN or Inf")


# ---------------------------------------------------------------------------- loading

def _check_rng_state(r, state, where):
    ok = (isinstance(state, dict) and set(state) == {"bit_generator", "state", "has_uint32", "uinteger"}
          and state["bit_generator"] in _RNG_NAMES and isinstance(state["state"], dict)
          and set(state["state"]) == {"state", "inc"}
          and all(_is_int(v) and 0 <= v < 2 ** 128 for v in state["state"].values())
          and _is_int(state["has_uint32"]) and state["has_uint32"] in (0, 1)
          and _is_int(state["uinteger"]) and 0 <= state["uinteger"] < 2 ** 32)
    if not ok:
        raise r.error(f"invalid header: {where} is not a PCG64 generator state")
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError) as exc:
        raise r.error(f"invalid header: {where}: {exc}") from None
    return rng


def _check_training(r, training):
    """Validate the ``training`` entry of a checkpoint header; return it with RNGs built."""
    if not isinstance(training, dict):
        raise r.error("invalid header: a checkpoint needs a 'training' object")
    need = {"trainer", "optimizer", "lr", "layer_rngs", "callbacks", "logs"}
    if set(training) != need:
        raise r.error(f"invalid header: 'training' needs exactly the keys {sorted(need)}")
    tr = training["trainer"]
    if not isinstance(tr, dict) or not _is_int(tr.get("epoch")) or tr["epoch"] < 0:
        raise r.error("invalid header: training.trainer.epoch must be a non-negative integer")
    rngs = {}
    if "rng_state" in tr:
        rngs["trainer"] = _check_rng_state(r, tr["rng_state"], "training.trainer.rng_state")
    opt = training["optimizer"]
    if not (isinstance(opt, dict) and isinstance(opt.get("name"), str) and _is_int(opt.get("iterations"))
            and opt["iterations"] >= 0 and isinstance(opt.get("has_state"), bool)
            and isinstance(opt.get("config", {}), dict)):
        raise r.error("invalid header: training.optimizer needs name (str), iterations (int >= 0), has_state (bool)")
    if opt["iterations"] >= 2 ** 53 or tr["epoch"] >= 2 ** 53:  # the kernels take int64 steps; lr schedules floats
        raise r.error("invalid header: training.optimizer.iterations and training.trainer.epoch must be < 2**53")
    lr = training["lr"]
    if not (isinstance(lr, dict) and {"value", "schedule", "current"} <= set(lr)
            <= {"value", "schedule", "current", "schedule_config", "schedule_state"}):
        raise r.error("invalid header: training.lr needs exactly value, schedule, current "
                      "(and optionally schedule_config, schedule_state)")
    if not (lr["value"] is None or (isinstance(lr["value"], numbers.Real) and not isinstance(lr["value"], bool)
                                    and lr["value"] > 0)):
        raise r.error("invalid header: training.lr.value must be a positive number or null")
    if not (lr["schedule"] is None or isinstance(lr["schedule"], str)) or not (
            isinstance(lr["current"], numbers.Real) and not isinstance(lr["current"], bool) and lr["current"] >= 0):
        raise r.error("invalid header: training.lr.schedule must be a string or null and training.lr.current "
                      "a number >= 0")
    layer_rngs = training["layer_rngs"]
    if not isinstance(layer_rngs, dict):
        raise r.error("invalid header: training.layer_rngs must be an object")
    for key, state in layer_rngs.items():
        if not _LAYER_INDEX.fullmatch(key):  # ASCII digits only: "²".isdigit() is True but int("²") fails
            raise r.error(f"invalid header: training.layer_rngs key {key!r} is not a layer index "
                          f"(a non-negative integer)"[:300])
        rngs[int(key)] = _check_rng_state(r, state, f"training.layer_rngs[{key!r}]")
    cbs = training["callbacks"]
    if not isinstance(cbs, list) or not all(
            isinstance(c, dict) and set(c) == {"index", "class", "state"} and _is_int(c["index"])
            and isinstance(c["class"], str) for c in cbs):
        raise r.error("invalid header: training.callbacks must be a list of {index, class, state}")
    logs = training["logs"]
    if not isinstance(logs, dict) or not all(isinstance(v, numbers.Real) for v in logs.values()):
        raise r.error("invalid header: training.logs must be an object of numbers")
    return rngs


def _arch(config):
    return json.loads(json.dumps(config))


def load_checkpoint(path, trainer=None, *, backend=None):
    """Load a training checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
    trainer : Trainer, optional
        If given, restore into it: its network's weights (the architecture
        must match), optimizer state and step count, learning rate, epoch
        counter, shuffling RNG, dropout RNGs and callback states. The
        optimizer class must match. Nothing changes if anything fails.
    backend : str, optional
        Backend of the network built when ``trainer`` is None.

    Returns
    -------
    dict
        ``network`` (the trainer's, or a new one), ``epoch``, ``iterations``,
        ``optimizer`` (name, config), ``optimizer_state`` (array or None),
        ``lr`` (value/schedule/current), ``logs``, ``metadata``,
        ``trainer_state`` (as :meth:`Trainer.state_dict` returns it).

    Raises
    ------
    fastnn.errors.ModelFormatError
        Malformed file, or a plain model file (no training state).
    ValueError
        The checkpoint does not fit ``trainer`` (architecture or optimizer class).
    """
    # Phase 1 reads and checks everything (file, values, fit with the trainer) and changes nothing;
    # phase 2 (_restore) applies it, and puts every piece of state back if anything still fails.
    with _open_validated(path) as (r, header, table, data_start):
        if header["kind"] != "checkpoint":
            raise r.error("not a training checkpoint: this is a model file (weights only; "
                          "load it with Network.load and train it with a new Trainer)")
        training = header.get("training")
        rngs = _check_training(r, training)
        opt_info = training["optimizer"]
        layers, dtype, task, expected = build_layers(r, header["network"])
        _check_params_table(r, table, expected, dtype, ("optimizer.state",))
        for key in rngs:
            if key != "trainer" and (key >= len(layers) or not hasattr(layers[key], "rng")):
                raise r.error(f"invalid header: training.layer_rngs names layer {key}, which has no random "
                              f"generator (the network has {len(layers)} layers)")
        if opt_info["has_state"] != ("optimizer.state" in table):
            raise r.error("missing tensor 'optimizer.state'" if opt_info["has_state"]
                          else "unexpected tensor(s) ['optimizer.state'] (has_state is false)")
        n_params = sum(_size(shape) for name, shape in expected if name.startswith("layers."))
        if opt_info["has_state"]:
            t_dtype, t_shape, _, _ = table["optimizer.state"]
            if len(t_shape) != 2 or t_shape[1] != n_params or t_dtype != DTYPES[dtype]:
                raise r.error(f"tensor shape mismatch: 'optimizer.state' is {list(t_shape)} {t_dtype.name}, "
                              f"expected [slots, {n_params}] {dtype}")

        if trainer is not None:
            net = trainer.network
            mine = _arch(network_config(net))
            if mine["dtype"] != dtype or mine["layers"] != _arch(header["network"]["layers"]):
                raise ValueError(f"{r.name}: the checkpoint's network ({dtype}, {header['network']['layers']}) "
                                 f"differs from the trainer's ({mine['dtype']}, {mine['layers']})"[:2000])
            if opt_info["name"] != type(trainer.optimizer).__name__:
                raise ValueError(f"{r.name}: the checkpoint was trained with {opt_info['name']}, but the trainer "
                                 f"uses {type(trainer.optimizer).__name__}; build the trainer with the same "
                                 f"optimizer class to resume")
            slots = max(trainer.optimizer.n_slots, 1)
            if opt_info["has_state"] and table["optimizer.state"][1][0] != slots:
                raise r.error(f"tensor shape mismatch: 'optimizer.state' has {table['optimizer.state'][1][0]} "
                              f"slots, {opt_info['name']} needs {slots}")
        opt_state = None
        if opt_info["has_state"]:
            opt_state = read_tensor(r, data_start, table["optimizer.state"])
            _check_optimizer_state(r, trainer.optimizer if trainer is not None else opt_info["name"], opt_state)
        if trainer is None:
            net = _load_network_from(r, header, table, data_start, backend, None, ("optimizer.state",))
            for key, rng in rngs.items():
                if key != "trainer":
                    net.layers[key].rng = rng
        else:
            # Read everything into copies, and check the values, before changing anything.
            copies = {id(net.params): net.params.copy()}
            if getattr(net, "buffers", None) is not None:
                copies[id(net.buffers)] = net.buffers.copy()
            loaded = {}
            for name, flat, off, shape in _net_slots(net):
                view = copies[id(flat)][off:off + _size(shape)]
                view[...] = read_tensor(r, data_start, table[name]).reshape(-1)
                loaded[name] = view.reshape(shape)
            check_values(r, layers, loaded)
            params = (copies[id(net.params)], copies.get(id(getattr(net, "buffers", None))))

    trainer_state = dict(training["trainer"])
    trainer_state["optimizer"] = {"name": opt_info["name"], "config": opt_info.get("config", {}),
                                  "iterations": opt_info["iterations"], "state": opt_state}
    if trainer is not None:
        _restore(trainer, params, trainer_state, training, rngs, task, r.name)
    return {"network": net, "epoch": training["trainer"]["epoch"], "iterations": opt_info["iterations"],
            "optimizer": {"name": opt_info["name"], "config": opt_info.get("config", {})},
            "optimizer_state": opt_state, "lr": training["lr"], "logs": training["logs"],
            "metadata": header.get("metadata", {}), "trainer_state": trainer_state}


def _snapshot(trainer):
    """Everything :func:`_restore` may change, to put back if it fails halfway."""
    net, opt = trainer.network, trainer.optimizer
    snap = {"params": net.params.copy(), "buffers": None if net.buffers is None else net.buffers.copy(),
            "task": net.task, "epoch": trainer.epoch, "rng": trainer.rng.bit_generator.state,
            "opt": (opt.lr, None if opt.state is None else opt.state.copy(), opt.iterations),
            "layer_rngs": {i: layer.rng.bit_generator.state for i, layer in enumerate(net.layers)
                           if isinstance(getattr(layer, "rng", None), np.random.Generator)},
            "schedule": None, "callbacks": {}}
    if callable(opt.lr) and callable(getattr(opt.lr, "state_dict", None)):
        snap["schedule"] = copy.deepcopy(opt.lr.state_dict())
    for i, cb in enumerate(getattr(trainer, "callbacks", None) or []):
        if callable(getattr(cb, "state_dict", None)) and callable(getattr(cb, "load_state_dict", None)):
            snap["callbacks"][i] = copy.deepcopy(cb.state_dict())
    return snap


def _rollback(trainer, snap):
    net, opt = trainer.network, trainer.optimizer
    net.params[...] = snap["params"]
    if snap["buffers"] is not None:
        net.buffers[...] = snap["buffers"]
    net.task = snap["task"]
    trainer.epoch = snap["epoch"]
    trainer.rng = np.random.default_rng()
    trainer.rng.bit_generator.state = snap["rng"]
    opt.lr, opt.state, opt.iterations = snap["opt"]
    for i, state in snap["layer_rngs"].items():
        rng = np.random.default_rng()
        rng.bit_generator.state = state
        net.layers[i].rng = rng
    if snap["schedule"] is not None:
        opt.lr.load_state_dict(snap["schedule"])
    callbacks = getattr(trainer, "callbacks", None) or []
    for i, state in snap["callbacks"].items():
        callbacks[i].load_state_dict(state)


def _restore(trainer, params, trainer_state, training, rngs, task, name):
    """Apply a checked checkpoint to ``trainer``: all of it, or (on any failure) none of it."""
    snap = _snapshot(trainer)
    try:
        _apply(trainer, params, trainer_state, training, rngs, task, name)
    except BaseException:
        _rollback(trainer, snap)
        raise


def _apply(trainer, params, trainer_state, training, rngs, task, name):
    net, opt = trainer.network, trainer.optimizer
    saved_cfg = trainer_state["optimizer"]["config"]
    mine = opt.get_config()
    differing = sorted(k for k in saved_cfg if k != "lr" and k in mine and mine[k] != saved_cfg[k])
    if differing:
        warnings.warn(f"{name}: optimizer settings {differing} differ from the checkpoint's "
                      f"({ {k: saved_cfg[k] for k in differing} }); the run will not continue exactly",
                      stacklevel=3)
    saved_lr = training["lr"]
    new_lr = None
    if saved_lr["value"] is not None:
        if callable(opt.lr):
            warnings.warn(f"{name}: the checkpoint used a constant learning rate {saved_lr['value']}, the trainer "
                          f"a schedule; keeping the schedule", stacklevel=3)
        elif opt.lr != saved_lr["value"]:
            warnings.warn(f"{name}: restoring the checkpoint's learning rate {saved_lr['value']} (the optimizer "
                          f"had {opt.lr}) for an exact continuation; to change it, call load_checkpoint(path, "
                          f"trainer), set trainer.optimizer.lr and fit without resume_from", stacklevel=3)
            new_lr = float(saved_lr["value"])
    elif not callable(opt.lr):
        warnings.warn(f"{name}: the checkpoint used a learning-rate schedule ({saved_lr.get('schedule')}), "
                      f"the trainer a constant {opt.lr}; keeping the constant", stacklevel=3)
    elif "schedule_config" in saved_lr and callable(getattr(opt.lr, "to_config", None)) \
            and _arch(opt.lr.to_config()) != saved_lr["schedule_config"]:
        warnings.warn(f"{name}: the trainer's schedule {opt.lr!r} differs from the checkpoint's "
                      f"({saved_lr.get('schedule')}); the run will not continue exactly", stacklevel=3)
    try:
        trainer.load_state_dict(trainer_state)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{name}: the training state does not load: {exc}") from None
    if new_lr is not None:
        opt.lr = new_lr
    if "schedule_state" in saved_lr and callable(getattr(opt.lr, "load_state_dict", None)):
        try:
            opt.lr.load_state_dict(saved_lr["schedule_state"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"{name}: the learning-rate schedule state does not load: {exc}") from None
    net.params[...] = params[0]
    if params[1] is not None:
        net.buffers[...] = params[1]
    if task is not None:
        net.task = task
    if "trainer" in rngs and "rng_state" not in trainer_state:
        trainer.rng = rngs["trainer"]
    for key, rng in rngs.items():
        if key != "trainer":
            net.layers[key].rng = rng
    callbacks = getattr(trainer, "callbacks", None) or []
    for entry in training["callbacks"]:
        i = entry["index"]
        if 0 <= i < len(callbacks) and type(callbacks[i]).__name__ == entry["class"] \
                and callable(getattr(callbacks[i], "load_state_dict", None)):
            try:
                callbacks[i].load_state_dict(entry["state"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelFormatError(f"{name}: state of callback {entry['class']} does not load: {exc}") from None
