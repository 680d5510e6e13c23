"""Learning-rate schedules: closed forms, PyTorch OneCycleLR parity, validation, use in training."""
import math
import pickle

import numpy as np
import pytest

from fastnn import schedules as S
from fastnn.schedules import Constant, CosineDecay, ExponentialDecay, OneCycle, StepDecay

STEPS = np.array([0, 1, 2, 9, 10, 11, 49, 50, 99, 100, 150, 1000], dtype=np.int64)


def test_constant():
    s = Constant(0.05)
    np.testing.assert_array_equal(s(STEPS), np.full(len(STEPS), 0.05))
    assert s(0) == 0.05 and isinstance(s(0), float)


def test_step_decay_closed_form():
    s = StepDecay(0.1, step_size=10, gamma=0.5)
    expected = [0.1 * 0.5 ** math.floor(t / 10) for t in STEPS]
    np.testing.assert_allclose(s(STEPS), expected, rtol=1e-15)
    assert s(9) == 0.1 and s(10) == 0.05 and s(20) == 0.025


def test_exponential_decay_closed_form():
    s = ExponentialDecay(0.1, decay_rate=0.96, decay_steps=100)
    np.testing.assert_allclose(s(STEPS), [0.1 * 0.96 ** (t / 100) for t in STEPS], rtol=1e-14)
    st = ExponentialDecay(0.1, decay_rate=0.96, decay_steps=100, staircase=True)
    np.testing.assert_allclose(st(STEPS), [0.1 * 0.96 ** (t // 100) for t in STEPS], rtol=1e-14)
    # growing rates (the lr range test): from 1e-7 to 10 over 199 steps
    g = ExponentialDecay(1e-7, decay_rate=1e8, decay_steps=199)
    np.testing.assert_allclose(g(np.array([0, 199])), [1e-7, 10.0], rtol=1e-12)


def _cosine_closed(t, lr, total, warmup, min_lr):
    if t < warmup:
        return lr * (t + 1) / warmup
    p = min(1.0, (t - warmup) / (total - warmup))
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * p))


@pytest.mark.parametrize("warmup,min_lr", [(0, 0.0), (10, 0.0), (10, 1e-4), (1, 0.01)])
def test_cosine_decay_closed_form(warmup, min_lr):
    s = CosineDecay(0.1, total_steps=100, warmup_steps=warmup, min_lr=min_lr)
    np.testing.assert_allclose(s(STEPS), [_cosine_closed(t, 0.1, 100, warmup, min_lr) for t in STEPS],
                               rtol=1e-13, atol=1e-16)
    assert s(100) == pytest.approx(min_lr) and s(10 ** 6) == pytest.approx(min_lr)
    if warmup:
        assert s(warmup - 1) == pytest.approx(0.1) and s(warmup) == pytest.approx(0.1)
    # the half-way point of the cosine is the mean of lr and min_lr
    mid = warmup + (100 - warmup) / 2
    if mid == int(mid):
        assert s(int(mid)) == pytest.approx((0.1 + min_lr) / 2)


@pytest.mark.parametrize("total,pct,div,final_div", [(100, 0.3, 25.0, 1e4), (37, 0.25, 10.0, 100.0),
                                                     (1000, 0.5, 5.0, 1e3), (10, 0.3, 25.0, 1e4)])
def test_one_cycle_matches_torch(total, pct, div, final_div):
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total, pct_start=pct,
                                                anneal_strategy="cos", div_factor=div,
                                                final_div_factor=final_div, cycle_momentum=False)
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = OneCycle(0.1, total, pct_start=pct, div_factor=div, final_div_factor=final_div)
    np.testing.assert_allclose(ours(np.arange(total)), expected, rtol=1e-12, atol=1e-18)
    # after the cycle: stays at the final rate (torch raises there)
    assert ours(total + 5) == pytest.approx(expected[-1])


def test_one_cycle_landmarks():
    s = OneCycle(1.0, 101, pct_start=0.5, div_factor=10, final_div_factor=100)
    assert s(0) == pytest.approx(0.1)
    assert s(int(0.5 * 101 - 1)) < 1.0 and s.initial_lr == 0.1 and s.final_lr == pytest.approx(1e-3)
    assert s(100) == pytest.approx(1e-3)
    r = s(np.arange(101))
    peak = int(np.argmax(r))
    assert np.all(np.diff(r[:peak + 1]) > 0) and np.all(np.diff(r[peak:]) < 0)


def test_scalar_and_array_inputs():
    s = CosineDecay(0.1, 50, warmup_steps=5)
    assert isinstance(s(3), float)
    out = s(np.arange(4, dtype=np.int64))
    assert out.dtype == np.float64 and out.shape == (4,)
    assert s(np.int64(3)) == out[3]
    assert s(np.zeros((2, 3), np.int64)).shape == (2, 3)
    assert s(np.array([], np.int64)).shape == (0,)
    assert s(3.0) == s(3)
    with pytest.raises(ValueError, match="integers"):
        s(1.5)
    with pytest.raises(ValueError, match="start at 0"):
        s(-1)


@pytest.mark.parametrize("make", [
    lambda: Constant(0), lambda: Constant(-1), lambda: Constant(float("nan")), lambda: Constant("0.1"),
    lambda: StepDecay(0.1, 0), lambda: StepDecay(0.1, 2.5), lambda: StepDecay(0.1, 10, gamma=0),
    lambda: StepDecay(0.1, True),
    lambda: ExponentialDecay(0.1, 0, 10), lambda: ExponentialDecay(0.1, 0.9, 0),
    lambda: CosineDecay(0.1, 0), lambda: CosineDecay(0.1, 10, warmup_steps=10),
    lambda: CosineDecay(0.1, 10, min_lr=0.2), lambda: CosineDecay(0.1, 10, warmup_steps=-1),
    lambda: OneCycle(0.1, 1), lambda: OneCycle(0.1, 100, pct_start=0), lambda: OneCycle(0.1, 100, pct_start=1),
    lambda: OneCycle(0.1, 100, div_factor=0.5), lambda: OneCycle(0.1, 100, final_div_factor=0),
    lambda: OneCycle(0.1, 3, pct_start=0.3), lambda: OneCycle(float("inf"), 100),
])
def test_invalid_arguments(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("sched", [Constant(0.1), StepDecay(0.1, 10, 0.5), ExponentialDecay(0.1, 0.5, 7, True),
                                   CosineDecay(0.1, 100, 10, 1e-3), OneCycle(0.2, 100, 0.4, 10.0, 100.0)])
def test_config_repr_roundtrip(sched):
    rebuilt = S.from_config(sched.to_config())
    assert rebuilt == sched and hash(rebuilt) == hash(sched)
    np.testing.assert_array_equal(rebuilt(STEPS), sched(STEPS))
    assert eval(repr(sched), vars(S)) == sched
    assert pickle.loads(pickle.dumps(sched)) == sched
    with pytest.raises(ValueError):
        S.from_config({"name": "Nope", "config": {}})


def test_vectorised_no_python_loop_cost():
    s = OneCycle(0.1, 10 ** 6)
    r = s(np.arange(10 ** 6, dtype=np.int64))
    assert r.shape == (10 ** 6,) and np.isfinite(r).all() and (r > 0).all()


def test_schedule_drives_optimizer_in_training():
    import fastnn as fnn
    from fastnn.data.synthetic import moons

    X, y = moons(256, noise=0.1, seed=0)
    net = fnn.Network([fnn.Dense(2, 8, "relu"), fnn.Dense(8, 2)], seed=0, backend="reference")
    sched = StepDecay(0.05, step_size=8, gamma=0.5)
    trainer = fnn.Trainer(net, optimizer=fnn.Adam(sched), batch_size=32, verbose=0, seed=0)
    hist = trainer.fit(X, y, epochs=3)  # 8 steps per epoch
    np.testing.assert_allclose(hist["lr"], [0.05, 0.025, 0.0125])
    assert trainer.optimizer.iterations == 24
