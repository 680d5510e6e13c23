"""Model files: a :class:`~fastnn.network.Network` to and from the ``.fnn`` container (see :mod:`fastnn.io.container`)."""
import numbers

import numpy as np

from .container import DTYPES, NETWORK_DTYPES, TASKS, _open_validated, _read_into, read_tensor, write_file

__all__ = ["save_network", "load_network", "read_header", "network_config", "param_tensors", "build_layers",
           "check_values"]


def network_config(network):
    """The ``network`` header entry; raises ValueError for what a model file cannot hold."""
    from ..layers import LAYER_TYPES

    dtype = np.dtype(network.dtype).name
    if dtype not in NETWORK_DTYPES:
        raise ValueError(f"network dtype {dtype} cannot be saved (allowed: {NETWORK_DTYPES})")
    layers = []
    for i, layer in enumerate(network.layers):
        name = type(layer).__name__
        if LAYER_TYPES.get(name) is not type(layer):
            raise ValueError(f"layer {i} ({name}) is not a registered layer type; model files can only hold "
                             f"{sorted(LAYER_TYPES)}")
        layers.append({"type": name, "config": layer.get_config()})
    task = network.task
    if task not in TASKS:
        raise ValueError(f"network.task must be one of {TASKS}, not {task!r}")
    config = {"dtype": dtype, "task": task, "layers": layers}
    shape = tuple(network.input_shape)
    first = network.layers[0]
    # The input shape goes in unless the first layer's config pins it (Dense(n_in, ...)); an Embedding or
    # any layer rebuilt without a known width needs it.
    if len(shape) != 1 or not first.get_config() or type(first)(**first.get_config()).n_inputs is None:
        config["input_shape"] = list(shape)  # the first layer's config does not pin the input shape
    return config


def _net_slots(network):
    """``[(tensor name, flat array, offset, shape)]``: parameters (``layers.<i>.<name>``), then
    non-trainable buffers such as BatchNorm running statistics (``buffers.<i>.<name>``)."""
    out = [(f"layers.{i}.{name}", network.params, off, tuple(shape)) for i, name, off, shape in network._slots]
    flat = getattr(network, "buffers", None)
    out += [(f"buffers.{i}.{name}", flat, off, tuple(shape))
            for i, name, off, shape in getattr(network, "_buffer_slots", ())]
    return out


def _size(shape):
    n = 1
    for d in shape:
        n *= int(d)
    return n


def param_tensors(network):
    """``[(name, view)]`` of everything a model file stores, in file order (see :func:`_net_slots`)."""
    return [(name, flat[off:off + _size(shape)].reshape(shape)) for name, flat, off, shape in _net_slots(network)]


def _check_metadata(metadata):
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict of str -> str, not {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"metadata must map str to str; got {key!r}: {value!r} "
                            f"(convert values with str() or json.dumps())")
    return dict(metadata)


def save_network(network, path, *, metadata=None):
    """Save a network (architecture, dtype, task, weights) to one file, atomically.

    Parameters
    ----------
    network : Network
    path : str or os.PathLike
        Destination, conventionally ``*.fnn``; replaced atomically if it exists.
    metadata : dict of str -> str, optional
        Free-form annotations stored in the header (see :func:`read_header`).

    Raises
    ------
    ValueError
        If a layer is not a registered type or its config is not plain JSON data.
    """
    from .. import __version__

    header = {"kind": "model", "fastnn_version": __version__, "network": network_config(network),
              "metadata": _check_metadata(metadata)}
    write_file(path, header, param_tensors(network))


# ---------------------------------------------------------------------------- reading: networks

def _check_config_value(value, depth=0):
    if value is None or isinstance(value, (str, bool, numbers.Real)):
        return True
    if isinstance(value, list) and depth < 4:
        return all(_check_config_value(v, depth + 1) for v in value)
    return False


def build_layers(r, spec):
    """Validate a header's ``network`` entry and build its layers (nothing allocated).

    Returns ``(layers, dtype, task, expected)`` where ``expected`` lists
    ``(tensor name, shape)`` in file order: parameters, then non-trainable
    buffers. Only registry layer types, only through their validating
    constructors.
    """
    from ..layers import LAYER_TYPES
    from ..network import Network

    if not isinstance(spec, dict) or not {"dtype", "task", "layers"} <= set(spec) <= \
            {"dtype", "task", "layers", "input_shape"}:
        raise r.error("invalid header: 'network' must be an object with exactly dtype, task, layers "
                      "(and optionally input_shape)")
    dtype = spec["dtype"]
    if not isinstance(dtype, str) or dtype not in NETWORK_DTYPES:
        raise r.error(f"unknown dtype {dtype!r} for the network (allowed: {NETWORK_DTYPES})"[:300])
    task = spec["task"]
    if task not in TASKS:
        raise r.error(f"invalid header: network task must be one of {TASKS}, got {task!r}"[:300])
    entries = spec["layers"]
    if not isinstance(entries, list) or not entries:
        raise r.error("invalid header: network layers must be a non-empty list")
    layers = []
    expected = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) != {"type", "config"}:
            raise r.error(f"invalid layer {i}: expected an object with exactly 'type' and 'config'")
        type_name, config = entry["type"], entry["config"]
        if not isinstance(type_name, str) or type_name not in LAYER_TYPES:
            raise r.error(f"unknown layer type {type_name!r} for layer {i} (known: {sorted(LAYER_TYPES)})"[:300])
        if not isinstance(config, dict) or not all(_check_config_value(v) for v in config.values()):
            raise r.error(f"invalid layer {i} ({type_name}): config must be an object of JSON scalars or lists")
        try:
            layer = LAYER_TYPES[type_name](**config)
        except Exception as exc:  # the constructor is the validator: any refusal is a format error
            raise r.error(f"invalid layer {i} ({type_name}): {type(exc).__name__}: {exc}"[:500]) from None
        layers.append(layer)

    class _Stack:  # width inference exactly as Network does it, without allocating anything
        pass

    stack = _Stack()
    stack.layers = layers
    try:
        Network._build_shapes(stack, spec.get("input_shape"))
    except (TypeError, ValueError) as exc:
        raise r.error(f"invalid layer stack: {exc}") from None
    buffers = []
    for i, layer in enumerate(layers):
        try:
            pshapes = layer.param_shapes()
            bshapes = layer.buffer_shapes() if hasattr(layer, "buffer_shapes") else {}
        except Exception as exc:
            raise r.error(f"invalid layer {i} ({type(layer).__name__}): {type(exc).__name__}: {exc}"[:500]) from None
        expected += [(f"layers.{i}.{name}", tuple(int(d) for d in shape)) for name, shape in pshapes.items()]
        buffers += [(f"buffers.{i}.{name}", tuple(int(d) for d in shape)) for name, shape in bshapes.items()]
    return layers, dtype, task, expected + buffers


def _check_params_table(r, table, expected, dtype, extra_allowed=()):
    names = [name for name, _ in expected]
    for name, shape in expected:
        if name not in table:
            raise r.error(f"missing tensor {name!r} (the architecture needs it)")
        t_dtype, t_shape, _, _ = table[name]
        if t_shape != shape:
            raise r.error(f"tensor shape mismatch: {name!r} is {list(t_shape)} but the architecture needs {list(shape)}")
        if t_dtype != DTYPES[dtype]:
            raise r.error(f"tensor dtype mismatch: {name!r} is {t_dtype.name} but the network is {dtype}")
    unexpected = set(table) - set(names) - set(extra_allowed)
    if unexpected:
        raise r.error(f"unexpected tensor(s) {sorted(unexpected)[:5]} for this architecture")


def check_values(r, layers, tensors):
    """Refuse loaded values a layer cannot hold (NaN/Inf, a negative variance...): ``Layer.check_state``
    of each layer gets its tensors (``{file tensor name: array}``) before any of them is used."""
    per_layer = [({}, {}) for _ in layers]
    for name, arr in tensors.items():
        kind, i, key = name.split(".", 2)
        per_layer[int(i)][0 if kind == "layers" else 1][key] = arr
    for i, (layer, (params, buffers)) in enumerate(zip(layers, per_layer)):
        try:
            layer.check_state(params, buffers)
        except ValueError as exc:
            raise r.error(f"invalid tensor value in layer {i} ({type(layer).__name__}): {exc}"[:500]) from None


def _check_optimizer_state(r, optimizer, state):
    """The optimizer's own rule for its state (finite moments, non-negative squared-gradient sums);
    ``optimizer`` is an instance, or the class name from the file (unknown names: finite values only)."""
    from ..optimizers import CLASSES

    if isinstance(optimizer, str):
        cls = CLASSES.get(optimizer)
        if cls is None:
            if state.size and not np.isfinite(state).all():
                raise r.error("invalid tensor value: 'optimizer.state' holds NaN or Inf")
            return
        optimizer = cls()
    try:
        optimizer.check_state(state)
    except ValueError as exc:
        raise r.error(f"invalid tensor value: 'optimizer.state': {exc}") from None


def _load_network_from(r, header, table, data_start, backend=None, seed=None, extra_tensors=()):
    from ..network import Network

    layers, dtype, task, expected = build_layers(r, header["network"])
    _check_params_table(r, table, expected, dtype, extra_tensors)
    # Sizes are now known to fit in the file: allocating the network is bounded by the file size.
    try:
        net = Network(layers, dtype=dtype, backend=backend, seed=seed,
                      input_shape=header["network"].get("input_shape"))
    except (TypeError, ValueError) as exc:
        raise r.error(f"invalid layer stack: {exc}") from None
    slots = _net_slots(net)
    if [name for name, _ in expected] != [name for name, _, _, _ in slots]:  # cannot happen: same layers
        raise r.error("invalid layer stack: the network's tensors differ from the file's")
    for name, flat, off, shape in slots:
        view = flat[off:off + _size(shape)].reshape(shape)
        spec = table[name]
        if DTYPES[dtype] == flat.dtype:  # little-endian machine: read straight into the buffer
            _read_into(r, data_start, spec[2], view)
        else:
            view[...] = read_tensor(r, data_start, spec)
    check_values(r, layers, {name: flat[off:off + _size(shape)].reshape(shape) for name, flat, off, shape in slots})
    net.task = task
    return net


def load_network(path, *, backend=None, seed=None):
    """Load a network saved by :func:`save_network` (or from a training checkpoint).

    Parameters
    ----------
    path : str, os.PathLike or binary file object
    backend : str, optional
        Kernel backend of the loaded network.
    seed : int, optional
        Seeds the loaded network's dropout masks if it is trained further.

    Returns
    -------
    Network

    Raises
    ------
    fastnn.errors.ModelFormatError
        If the file is not a valid fastnn model file (see the module docstring).
    FileNotFoundError
        If ``path`` does not exist.
    """
    with _open_validated(path) as (r, header, table, data_start):
        extra = ("optimizer.state",) if header["kind"] == "checkpoint" else ()
        net = _load_network_from(r, header, table, data_start, backend, seed, extra)
        if "optimizer.state" in table and header["kind"] == "checkpoint":
            # the network does not use the moments, but a file with poisoned ones is not a sound file
            training = header.get("training")
            opt = training.get("optimizer") if isinstance(training, dict) else None
            name = opt.get("name") if isinstance(opt, dict) else None
            _check_optimizer_state(r, name if isinstance(name, str) else "", read_tensor(r, data_start,
                                                                                         table["optimizer.state"]))
        return net


def read_header(path):
    """The validated JSON header of a model or checkpoint file (a dict), without loading weights.

    Useful to inspect ``metadata``, the architecture (``header['network']``) or,
    for checkpoints, ``header['training']['epoch']``.
    """
    with _open_validated(path) as (r, header, table, data_start):
        build_layers(r, header["network"])
        return header
