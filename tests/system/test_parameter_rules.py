"""Declared hyper-parameter rules (``fastnn._validation.Param``): one rule per value, checked everywhere.

Walks every registered layer type, every optimizer and the Trainer, and feeds
every declared rule the values it refuses (``Constraint.invalid_examples``):
the constructor, a later assignment and a model file holding the value must
all refuse it, naming the class and the parameter, and change nothing. New
layer types join by declaring their hyper-parameters as ``Param`` attributes
and getting a seed network in ``scripts/fuzz_loaders.py``.
"""
import copy
import importlib.util
import io
import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn._validation import declared_params
from fastnn.errors import FastnnError, ModelFormatError, ParameterError
from fastnn.layers import LAYER_TYPES
from fastnn.optimizers import CLASSES as OPTIMIZERS

REPO = Path(__file__).resolve().parents[2]
PREFIX = struct.Struct("<8sIQ")


def _fuzz_module():
    spec = importlib.util.spec_from_file_location("fuzz_loaders", REPO / "scripts" / "fuzz_loaders.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FZ = _fuzz_module()


def _layers_by_type():
    """type name -> [(seed network name, layer index)] over the fuzzers' seed networks."""
    out = {}
    for name in FZ.seed_networks():
        net = FZ.build_seed_network(name)
        for i, layer in enumerate(net.layers):
            out.setdefault(type(layer).__name__, []).append((name, i))
    return out


LAYER_CASES = _layers_by_type()


def _cases():
    """(layer type, config key, bad value) for every declared rule of every registered layer type."""
    cases = []
    for type_name in sorted(LAYER_TYPES):
        if type_name not in LAYER_CASES:
            continue
        seed_name, i = LAYER_CASES[type_name][0]
        layer = FZ.build_seed_network(seed_name).layers[i]
        rules = declared_params(type(layer))
        for key in sorted(set(layer.get_config()) - WRAPPER_KEYS.get(type_name, set())):
            for bad in rules[key].constraint.invalid_examples():
                cases.append((type_name, key, bad))
    return cases


def _id(case):
    return f"{case[0]}-{case[1]}-{case[2]!r}"[:60]


def test_every_layer_type_has_a_seed_network():
    """A registered layer type without a seed network would escape the fuzzers and these rule checks."""
    missing = sorted(set(LAYER_TYPES) - set(LAYER_CASES))
    assert not missing, f"add a seed network holding {missing} to scripts/fuzz_loaders.py:seed_networks()"


#: wrapper layers: their config is another registered layer's (``layer_type``, ``layer_config``), which
#: the model-file loader rebuilds through that layer's own constructor, so its declared rules apply
WRAPPER_KEYS = {"Bidirectional": {"layer_type", "layer_config"}, "TimeDistributed": {"layer_type", "layer_config"}}


@pytest.mark.parametrize("type_name", sorted(LAYER_TYPES))
def test_every_config_key_is_a_declared_rule(type_name):
    for seed_name, i in LAYER_CASES.get(type_name, []):
        layer = FZ.build_seed_network(seed_name).layers[i]
        rules = declared_params(type(layer))
        undeclared = sorted(set(layer.get_config()) - set(rules) - WRAPPER_KEYS.get(type_name, set()))
        assert not undeclared, f"{type_name} config keys {undeclared} have no declared rule (Param)"


@pytest.mark.parametrize("case", _cases(), ids=_id)
def test_constructor_and_setter_refuse(case):
    type_name, key, bad = case
    seed_name, i = LAYER_CASES[type_name][0]
    layer = FZ.build_seed_network(seed_name).layers[i]
    config = dict(layer.get_config(), **{key: bad})
    with pytest.raises(ParameterError) as info:
        LAYER_TYPES[type_name](**config)
    assert type_name in str(info.value) and key in str(info.value)
    # a later assignment: refused, old value kept
    attr = declared_params(type(layer))[key].name
    before = getattr(layer, attr)
    with pytest.raises(ParameterError):
        setattr(layer, attr, bad)
    assert getattr(layer, attr) == before


def _json_ok(value):
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("case", [c for c in _cases() if _json_ok(c[2])], ids=_id)
def test_model_file_with_a_refused_value_is_refused(tmp_path, case):
    """The loader builds layers through their constructors: a file cannot hold what they refuse."""
    type_name, key, bad = case
    seed_name, i = LAYER_CASES[type_name][0]
    net = FZ.build_seed_network(seed_name)
    path = tmp_path / "m.fnn"
    net.save(path)
    raw = path.read_bytes()
    _, _, hlen = PREFIX.unpack(raw[:PREFIX.size])
    header = json.loads(raw[PREFIX.size:PREFIX.size + hlen])
    header["network"]["layers"][i]["config"][key] = bad
    hb = json.dumps(header).encode()
    path.write_bytes(PREFIX.pack(raw[:8], 1, len(hb)) + hb + raw[PREFIX.size + hlen:])
    with pytest.raises(ModelFormatError, match=f"invalid layer {i} \\({type_name}\\)"):
        fnn.Network.load(path)


def test_nan_alpha_and_negative_width_in_a_file(tmp_path):
    """The issue's examples: alpha NaN (written as a huge float that JSON accepts, then as NaN) and
    a negative width of a shape-free layer."""
    net = FZ.build_seed_network("model-f64-dropout")
    path = tmp_path / "m.fnn"
    net.save(path)
    raw = path.read_bytes()
    _, _, hlen = PREFIX.unpack(raw[:PREFIX.size])
    header = json.loads(raw[PREFIX.size:PREFIX.size + hlen])
    for mutate in (lambda h: h["network"]["layers"][0]["config"].update(alpha=1e400),
                   lambda h: h["network"]["layers"][1]["config"].update(n_units=-4)):
        h = copy.deepcopy(header)
        mutate(h)
        hb = json.dumps(h).encode()
        with pytest.raises(ModelFormatError):
            fnn.Network.load(io.BytesIO(PREFIX.pack(raw[:8], 1, len(hb)) + hb + raw[PREFIX.size + hlen:]))


# ---------------------------------------------------------------------------- optimizers and the trainer

def _rule_cases(cls, instance):
    return [(label, p.name, bad) for label, p in sorted(declared_params(cls).items())
            for bad in p.constraint.invalid_examples()]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizer_attributes_are_checked_on_set(name):
    opt = OPTIMIZERS[name]()
    cases = _rule_cases(type(opt), opt)
    assert {"lr", "weight_decay", "iterations"} <= {c[0] for c in cases}
    for label, attr, bad in cases:
        if label == "lr" and callable(bad):
            continue
        before = getattr(opt, attr)
        with pytest.raises(ParameterError, match=label):
            setattr(opt, attr, bad)
        assert getattr(opt, attr) == before or (isinstance(before, float) and math.isnan(before))


def test_negative_learning_rate_by_assignment_is_refused():
    opt = fnn.SGD(0.01)
    with pytest.raises(ParameterError, match="SGD lr"):
        opt.lr = -0.01
    assert opt.lr == 0.01
    opt.lr = fnn.CosineDecay(0.1, total_steps=10)  # a schedule stays a valid rate
    assert callable(opt.lr)


def _trainer():
    return fnn.Trainer(fnn.Network([fnn.Dense(3, 2)], seed=0), verbose=0)


def test_trainer_attributes_are_checked_on_set():
    tr = _trainer()
    cases = _rule_cases(type(tr), tr)
    assert {"batch_size", "clip_norm", "n_threads", "parallel", "path", "verbose"} <= {c[0] for c in cases}
    for label, attr, bad in cases:
        before = getattr(tr, attr)
        with pytest.raises(ParameterError, match=label):
            setattr(tr, attr, bad)
        assert getattr(tr, attr) == before


@pytest.mark.parametrize("n_threads", ["2", -2, 0, 2.0, True])
def test_bad_thread_counts_are_named(n_threads):
    with pytest.raises(ParameterError, match="n_threads"):
        fnn.Trainer(fnn.Network([fnn.Dense(3, 2)]), n_threads=n_threads)


@pytest.mark.parametrize("batch_size", [-1, 0, 2.5, "8"])
def test_evaluate_refuses_a_bad_batch_size(batch_size):
    tr = _trainer()
    X = np.ones((4, 3), np.float32)
    with pytest.raises(ParameterError, match="batch_size"):
        tr.evaluate(X, np.zeros(4, int), batch_size=batch_size)


def test_parameter_error_is_both_value_and_type_error():
    assert issubclass(ParameterError, ValueError) and issubclass(ParameterError, TypeError)
    assert issubclass(ParameterError, FastnnError)


@pytest.mark.parametrize("returns", ["fast", None, [0.1, 0.2, 0.3], {"lr": 0.1}, np.array(["a"]), True],
                         ids=["str", "None", "wrong-length", "dict", "str-array", "bool"])
def test_schedule_returning_a_non_number_is_a_named_error(returns):
    opt = fnn.Adam(lr=lambda steps: returns)
    with pytest.raises(ParameterError, match="Adam lr: the learning-rate schedule"):
        opt.learning_rates(0, 2)
    tr = fnn.Trainer(fnn.Network([fnn.Dense(3, 2)], seed=0), optimizer=opt, verbose=0)
    before = tr.network.params.copy()
    with pytest.raises(ParameterError, match="schedule"):
        tr.fit(np.ones((4, 3), np.float32), np.zeros(4, int))
    np.testing.assert_array_equal(tr.network.params, before)


@pytest.mark.parametrize("returns", [float("nan"), -0.1, float("inf")])
def test_schedule_returning_a_bad_rate_names_the_step(returns):
    opt = fnn.SGD(lr=lambda steps: np.where(steps == 3, returns, 0.1))
    with pytest.raises(ParameterError, match="at step 3"):
        opt.learning_rates(0, 5)


@pytest.mark.parametrize("n", ["2", -2, 0, 1.5, None, True])
def test_set_num_threads_refuses_non_counts(n):
    before = fnn.get_num_threads()
    with pytest.raises(ParameterError, match="set_num_threads"):
        fnn.set_num_threads(n)
    assert fnn.get_num_threads() == before


@pytest.mark.parametrize("seed", ["abc", -1, 1.5, [1, "x"]])
def test_bad_seeds_are_named(seed):
    with pytest.raises(ParameterError, match="Network seed"):
        fnn.Network([fnn.Dense(3, 2)], seed=seed)
    net = fnn.Network([fnn.Dense(3, 2)], seed=0)
    with pytest.raises(ParameterError, match="Trainer seed"):
        fnn.Trainer(net, seed=seed)
    tr = fnn.Trainer(net, seed=0, verbose=0)
    state = tr.rng.bit_generator.state
    with pytest.raises(ParameterError, match="fit seed"):
        tr.fit(np.ones((4, 3), np.float32), np.zeros(4, int), seed=seed)
    assert tr.rng.bit_generator.state == state


# ---------------------------------------------------------------------------- schedules and losses

SCHEDULES = [lambda: fnn.Constant(0.1), lambda: fnn.StepDecay(0.1, 5), lambda: fnn.ExponentialDecay(0.1, 0.5, 10),
             lambda: fnn.CosineDecay(0.1, 100, warmup_steps=5), lambda: fnn.OneCycle(0.1, 100)]
LOSSES = [lambda: fnn.FocalLoss(), lambda: fnn.Huber(), lambda: fnn.LabelSmoothingCrossEntropy(0.1),
          lambda: fnn.WeightedCrossEntropy(label_smoothing=0.2)]
CALLBACKS = [lambda: fnn.EarlyStopping(), lambda: fnn.ReduceLROnPlateau(), lambda: fnn.GradientFlow()]


@pytest.mark.parametrize("make", SCHEDULES + LOSSES + CALLBACKS, ids=lambda m: type(m()).__name__)
def test_schedule_loss_and_callback_settings_are_checked_on_set(make):
    obj = make()
    rules = declared_params(type(obj))
    assert rules, f"{type(obj).__name__} declares no rules"
    for label, param in rules.items():
        for bad in param.constraint.invalid_examples():
            before = getattr(obj, param.name)
            with pytest.raises(ParameterError, match=label):
                setattr(obj, param.name, bad)
            assert getattr(obj, param.name) == before


def test_one_cycle_follows_a_later_assignment():
    s = fnn.OneCycle(0.1, 100)
    s.max_lr = 0.2
    assert s(np.int64(int(0.3 * 100 - 1))) == pytest.approx(0.2) and s.initial_lr == pytest.approx(0.2 / 25)
