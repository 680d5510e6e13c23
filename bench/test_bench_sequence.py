"""Sequence-model benchmarks (issue 12): one epoch of row-sequential MNIST at batch 64, fastnn vs peers.

Group ``sequence``: LSTM(128) -> Dense(10) and one TransformerBlock(4 heads,
ff 128) over 64-wide steps (TimeDistributed(Dense(64)) -> PositionalEncoding
-> block -> GlobalAveragePooling1D -> Dense(10)), 28 steps x 28 pixels,
softmax-CE, Adam 1e-3, float32, for fastnn (numba and reference kernels,
per-layer path), PyTorch (``nn.LSTM`` / ``nn.TransformerEncoderLayer`` with
``norm_first=True``, fused Adam) and JAX (``lax.scan`` LSTM, jitted step) when
installed; peers are skipped, not failed, when missing. The goal of the issue
is fastnn >= 1.5x PyTorch; this is measured, not asserted.

Run:    FASTNN_DATA=../shared/data/mnist pytest bench/test_bench_sequence.py --benchmark-only
Smoke:  pytest bench -q --benchmark-disable -k sequence
"""
import math

import numpy as np
import pytest

from bench.peers import PeerRun

BATCH = 64
STEPS = FEATURES = 28


def _sequences(train_data):
    X, y = train_data
    return np.ascontiguousarray(X.reshape(len(X), STEPS, FEATURES), dtype=np.float32), np.asarray(y, np.int64)


def make_fastnn_sequence_epoch(X, y, model, backend, threads, seed=0):
    """One fastnn epoch of ``model`` ('lstm' or 'transformer') on (n, 28, 28) sequences."""
    import fastnn as fnn

    if model == "lstm":
        layers = [fnn.LSTM(128), fnn.Dense(10)]
    else:
        layers = [fnn.TimeDistributed(fnn.Dense(64)), fnn.PositionalEncoding(), fnn.TransformerBlock(4, 128),
                  fnn.GlobalAveragePooling1D(), fnn.Dense(10)]
    net = fnn.Network(layers, input_shape=(STEPS, FEATURES), seed=seed, backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=BATCH, seed=seed, n_threads=threads, verbose=0)
    tr.fit(X[:2 * BATCH], y[:2 * BATCH], epochs=1)  # compile and size the buffers outside the timing

    def epoch():
        return tr.fit(X, y, epochs=1).history["loss"][-1]
    return PeerRun(epoch, f"fastnn-{backend}-{model}", len(X), BATCH, threads)


def make_torch_sequence_epoch(X, y, model, threads, seed=0):
    """One PyTorch epoch of the same network (fused Adam, batches by index_select)."""
    import torch

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if model == "lstm":
                self.rnn = torch.nn.LSTM(FEATURES, 128, batch_first=True)
                self.head = torch.nn.Linear(128, 10)
            else:
                self.proj = torch.nn.Linear(FEATURES, 64)
                self.block = torch.nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True,
                                                              norm_first=True)
                self.head = torch.nn.Linear(64, 10)
                pos = np.arange(STEPS)[:, None] * np.exp(-math.log(1e4) * np.arange(0, 64, 2) / 64)
                pe = np.zeros((STEPS, 64), np.float32)
                pe[:, 0::2], pe[:, 1::2] = np.sin(pos), np.cos(pos)
                self.register_buffer("pe", torch.from_numpy(pe))

        def forward(self, x):
            if model == "lstm":
                out, _ = self.rnn(x)
                return self.head(out[:, -1])
            return self.head(self.block(self.proj(x) + self.pe).mean(dim=1))

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X.copy()), torch.from_numpy(y.copy())
    gen = torch.Generator().manual_seed(seed)

    def epoch():
        torch.set_num_threads(threads)
        perm = torch.randperm(len(X), generator=gen)
        loss = None
        for s in range(0, len(X), BATCH):
            idx = perm[s:s + BATCH]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(Xt.index_select(0, idx)), yt.index_select(0, idx))
            loss.backward()
            opt.step()
        return float(loss.detach())
    return PeerRun(epoch, f"torch-{model}", len(X), BATCH, threads)


def make_jax_lstm_epoch(X, y, threads, seed=0):
    """One JAX epoch of LSTM(128) -> Dense(10): lax.scan over the steps, one jitted step per batch."""
    import jax
    import jax.numpy as jnp
    import optax

    k = 128
    rng = np.random.default_rng(seed)
    params = {"W": jnp.asarray(rng.uniform(-0.1, 0.1, (FEATURES, 4 * k)), jnp.float32),
              "U": jnp.asarray(rng.uniform(-0.1, 0.1, (k, 4 * k)), jnp.float32),
              "b": jnp.zeros(4 * k, jnp.float32),
              "Wd": jnp.asarray(rng.uniform(-0.1, 0.1, (k, 10)), jnp.float32), "bd": jnp.zeros(10, jnp.float32)}
    opt = optax.adam(1e-3)
    state = opt.init(params)

    def logits(p, xb):
        xw = jnp.einsum("ntf,fg->tng", xb, p["W"]) + p["b"]

        def cell(carry, a):
            h, c = carry
            g = a + h @ p["U"]
            i, f, gg, o = jnp.split(g, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), None
        zero = jnp.zeros((xb.shape[0], k), jnp.float32)
        (h, _), _ = jax.lax.scan(cell, (zero, zero), xw)
        return h @ p["Wd"] + p["bd"]

    @jax.jit
    def step(p, s, xb, yb):
        loss, g = jax.value_and_grad(lambda q: optax.softmax_cross_entropy_with_integer_labels(
            logits(q, xb), yb).mean())(p)
        updates, s = opt.update(g, s)
        return optax.apply_updates(p, updates), s, loss

    holder = {"p": params, "s": state}
    full = len(X) // BATCH * BATCH  # whole batches only: one compiled shape

    def epoch():
        perm = rng.permutation(len(X))[:full]
        loss = None
        for s0 in range(0, full, BATCH):
            idx = perm[s0:s0 + BATCH]
            holder["p"], holder["s"], loss = step(holder["p"], holder["s"], X[idx], y[idx])
        return float(loss)
    epoch_fn = epoch
    step(params, state, X[:BATCH], y[:BATCH])  # compile outside the timing
    return PeerRun(epoch_fn, "jax-lstm-scan", full, BATCH, threads)


def _bench(benchmark, bench_rounds, run):
    benchmark.group = "sequence"
    return benchmark.pedantic(run, rounds=bench_rounds, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("model", ["lstm", "transformer"])
@pytest.mark.parametrize("backend", ["numba", "reference"])
def test_sequence_fastnn(benchmark, train_data, bench_rounds, bench_record, model, backend):
    import fastnn as fnn

    if backend not in fnn.available_backends():
        pytest.skip(f"{backend} backend not available")
    X, y = _sequences(train_data)
    run = make_fastnn_sequence_epoch(X, y, model, backend, threads=2)
    loss = _bench(benchmark, bench_rounds, run)
    assert math.isfinite(loss)
    bench_record(run, result=loss)


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_sequence_torch(benchmark, train_data, bench_rounds, bench_record, model):
    pytest.importorskip("torch")
    X, y = _sequences(train_data)
    run = make_torch_sequence_epoch(X, y, model, threads=2)
    loss = _bench(benchmark, bench_rounds, run)
    assert math.isfinite(loss)
    bench_record(run, result=loss)


def test_sequence_jax_lstm(benchmark, train_data, bench_rounds, bench_record):
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    X, y = _sequences(train_data)
    run = make_jax_lstm_epoch(X, y, threads=2)
    loss = _bench(benchmark, bench_rounds, run)
    assert math.isfinite(loss)
    bench_record(run, result=loss)
