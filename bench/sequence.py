"""Sequence-model epochs (issue 12): LSTM(128) and a transformer block on row-sequential MNIST, batch 64.

Models (28 steps x 28 pixels, softmax-CE, Adam 1e-3, float32):

- ``lstm``: LSTM(128) -> Dense(10) (the last hidden state); ``gru``: the same with GRU(128) (reset_after);
- ``transformer``: TimeDistributed(Dense(64)) -> PositionalEncoding -> TransformerBlock(4 heads, ff 128,
  pre-LayerNorm) -> GlobalAveragePooling1D -> Dense(10).

Contenders: fastnn per backend (per-layer path) as the trainer chooses (``parallel='auto'``), and with
``--splits kernels,shards`` both ways of using the threads side by side: ``kernels`` (the recurrence and
attention kernels run one OpenMP / Numba block of rows per thread, the rest on one thread, one-thread
BLAS) and ``shards`` (one row shard of each batch per thread, every kernel on one thread:
:mod:`fastnn.engine.sharded`); PyTorch (``nn.LSTM`` /
``nn.TransformerEncoderLayer(norm_first=True)``, fused Adam) and JAX (jitted step, optax Adam; the LSTM
through ``lax.scan``; no GRU) when installed. The contender ``cython-blas`` (``--backends``, not a
default) is the Cython backend with the float32 recurrent micro-kernel switched off (per-step BLAS
GEMMs, as before it): the micro-kernel's gain in one run; ``cython-avx2`` forces its AVX2+FMA variant
(what an AVX2-only CPU runs) on an AVX-512 machine. Interleaved comparison (each round runs every contender once, in
turn, so load drift hits all alike; XLA fixes its thread pool at start, so one process per thread count)::

    FASTNN_DATA=../shared/data/mnist python -m bench.sequence --threads 1 --n 20000 --rounds 3
    FASTNN_DATA=../shared/data/mnist python -m bench.sequence --threads 2 --splits kernels,shards --peers none \
        --batches 32,64,128 --n 3200 --rounds 2 --cpu   # the sweep behind fastnn.engine.sharded's rule
    python -m bench.sequence --models lstm,gru --backends cython,cython-avx2,cython-blas --threads 1 --peers torch
"""
import argparse
import math
import os
import statistics
import sys

import numpy as np

from bench.peers import PeerRun, torch_epoch
from bench.timing import interleaved_times

BATCH = 64
STEPS = FEATURES = 28


def sequences(X, y):
    """MNIST rows as (n, 28, 28) float32 sequences of 28 steps, int64 labels."""
    return np.ascontiguousarray(X.reshape(len(X), STEPS, FEATURES), dtype=np.float32), np.asarray(y, np.int64)


#: how a fastnn contender uses its threads: the trainer's rule, the kernels' own threads, row shards
SPLITS = {"auto": {}, "kernels": {"path": "per-layer"}, "shards": {"parallel": "shards"}}


def make_fastnn_sequence_epoch(X, y, model, backend, threads, seed=0, split="auto", batch=BATCH):
    """One fastnn epoch of ``model`` ('lstm', 'gru' or 'transformer') on (n, 28, 28) sequences; ``split``
    is a key of :data:`SPLITS` (``path='per-layer'`` is the kernel-threaded runner: no row shards);
    ``backend`` 'cython-blas' is Cython with the recurrent micro-kernel off, 'cython-avx2' with its AVX2
    variant forced (:data:`MICRO_KERNEL`)."""
    import fastnn as fnn

    impl, isa = f"fastnn-{backend}-{model}", MICRO_KERNEL.get(backend)
    backend = "cython" if backend in MICRO_KERNEL else backend
    if model in ("lstm", "gru"):
        layers = [fnn.LSTM(128) if model == "lstm" else fnn.GRU(128), fnn.Dense(10)]
    else:
        layers = [fnn.TimeDistributed(fnn.Dense(64)), fnn.PositionalEncoding(), fnn.TransformerBlock(4, 128),
                  fnn.GlobalAveragePooling1D(), fnn.Dense(10)]
    net = fnn.Network(layers, input_shape=(STEPS, FEATURES), seed=seed, backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=batch, seed=seed, n_threads=threads, verbose=0,
                     **SPLITS[split])
    switch = _isa_switch() if isa else (lambda isa: None)
    switch(isa)
    tr.fit(X[:2 * batch], y[:2 * batch], epochs=1)  # compile and size the buffers outside the timing
    switch("best")

    def epoch():
        switch(isa)
        try:
            return tr.fit(X, y, epochs=1).history["loss"][-1]
        finally:
            switch("best")
    suffix = "" if split == "auto" else f"-{split}"
    return PeerRun(epoch, f"{impl}{suffix}", len(X), batch, threads)


#: the Cython contenders that pin the float32 recurrent micro-kernel's ISA ('cython' runs the best one)
MICRO_KERNEL = {"cython-blas": "blas", "cython-avx2": "avx2"}


def _isa_switch():
    """``switch(isa)``: the Cython backend's float32 recurrent micro-kernel set to ``isa`` ('best': the
    CPU's default); refuses an ISA the CPU lacks (a no-op on a build without the switch)."""
    from fastnn._ext import _kernels

    if not hasattr(_kernels, "rnn_tiles_isa"):
        return lambda isa: None
    return lambda isa: _kernels.rnn_tiles(True) if isa == "best" else _kernels.rnn_tiles_isa(isa)


def torch_sequence_net(model, seed=0):
    """The PyTorch twin of ``model`` ('lstm' or 'transformer'), an ``nn.Module`` taking (n, 28, 28)."""
    import torch

    torch.manual_seed(seed)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            if model in ("lstm", "gru"):
                self.rnn = (torch.nn.LSTM if model == "lstm" else torch.nn.GRU)(FEATURES, 128, batch_first=True)
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
            if model in ("lstm", "gru"):
                out, _ = self.rnn(x)
                return self.head(out[:, -1])
            return self.head(self.block(self.proj(x) + self.pe).mean(dim=1))

    return Net()


def make_torch_sequence_epoch(X, y, model, threads, seed=0, batch=BATCH):
    """One PyTorch epoch of the same network (fused Adam, batches by index_select)."""
    import torch

    net = torch_sequence_net(model, seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X.copy()), torch.from_numpy(y.copy())
    epoch = torch_epoch(net, opt, loss_fn, Xt, yt, batch, threads, seed)
    return PeerRun(epoch, f"torch-{model}", len(X), batch, threads)


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

    return _jax_epoch(X, y, params, opt, state, logits, rng, "jax-lstm-scan", threads)


def _jax_transformer_params(rng, D=64, ff=128):
    def dense(a, b):
        lim = math.sqrt(6.0 / (a + b))
        return rng.uniform(-lim, lim, (a, b)).astype(np.float32), np.zeros(b, np.float32)
    p = {}
    p["Wp"], p["bp"] = dense(FEATURES, D)
    p["Wqkv"], p["bqkv"] = dense(D, 3 * D)
    p["Wo"], p["bo"] = dense(D, D)
    p["W1"], p["b1"] = dense(D, ff)
    p["W2"], p["b2"] = dense(ff, D)
    p["Wd"], p["bd"] = dense(D, 10)
    for name in ("ln1", "ln2"):
        p[name + "_g"], p[name + "_b"] = np.ones(D, np.float32), np.zeros(D, np.float32)
    return p


def make_jax_transformer_epoch(X, y, threads, seed=0, heads=4):
    """One JAX epoch of the transformer network (pre-LayerNorm block, as the others), one jitted step per batch."""
    import jax
    import jax.numpy as jnp
    import optax

    D = 64
    rng = np.random.default_rng(seed)
    params = {k: jnp.asarray(v) for k, v in _jax_transformer_params(rng, D).items()}
    pos = np.arange(STEPS)[:, None] * np.exp(-math.log(1e4) * np.arange(0, D, 2) / D)
    pe = np.zeros((STEPS, D), np.float32)
    pe[:, 0::2], pe[:, 1::2] = np.sin(pos), np.cos(pos)
    pe = jnp.asarray(pe)
    opt = optax.adam(1e-3)
    state = opt.init(params)

    def layernorm(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b

    def logits(p, xb):
        n = xb.shape[0]
        x = xb @ p["Wp"] + p["bp"] + pe
        a = layernorm(x, p["ln1_g"], p["ln1_b"]) @ p["Wqkv"] + p["bqkv"]
        q, k, v = (a[..., s * D:(s + 1) * D].reshape(n, STEPS, heads, D // heads).transpose(0, 2, 1, 3)
                   for s in range(3))
        att = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(D // heads), axis=-1)
        o = (att @ v).transpose(0, 2, 1, 3).reshape(n, STEPS, D)
        x = x + o @ p["Wo"] + p["bo"]
        h = jax.nn.relu(layernorm(x, p["ln2_g"], p["ln2_b"]) @ p["W1"] + p["b1"])
        x = x + h @ p["W2"] + p["b2"]
        return x.mean(axis=1) @ p["Wd"] + p["bd"]

    return _jax_epoch(X, y, params, opt, state, logits, rng, "jax-transformer", threads)


def _jax_epoch(X, y, params, opt, state, logits, rng, impl, threads):
    """A PeerRun of one epoch of jitted Adam steps on whole batches (one compiled shape)."""
    import jax
    import optax

    @jax.jit
    def step(p, s, xb, yb):
        loss, g = jax.value_and_grad(lambda q: optax.softmax_cross_entropy_with_integer_labels(
            logits(q, xb), yb).mean())(p)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    holder = {"p": params, "s": state}
    full = len(X) // BATCH * BATCH

    def epoch():
        perm = rng.permutation(len(X))[:full]
        loss = None
        for s0 in range(0, full, BATCH):
            idx = perm[s0:s0 + BATCH]
            holder["p"], holder["s"], loss = step(holder["p"], holder["s"], X[idx], y[idx])
        return float(loss)
    step(params, state, X[:BATCH], y[:BATCH])  # compile outside the timing
    return PeerRun(epoch, impl, full, BATCH, threads)


FASTNN_BACKENDS = ("numba", "cython")


def _factories(model, threads, backends, splits=("auto",), peers=("torch", "jax"), batch=BATCH):
    import importlib.util

    out = [lambda X, y, b=b, s=s: make_fastnn_sequence_epoch(X, y, model, b, threads, split=s, batch=batch)
           for b in backends for s in splits]
    if "torch" in peers and importlib.util.find_spec("torch") is not None:
        out.append(lambda X, y: make_torch_sequence_epoch(X, y, model, threads, batch=batch))
    if batch == BATCH and "jax" in peers and importlib.util.find_spec("jax") is not None \
            and importlib.util.find_spec("optax") is not None and model != "gru":
        make = make_jax_lstm_epoch if model == "lstm" else make_jax_transformer_epoch
        out.append(lambda X, y: make(X, y, threads))
    return out


def main(argv=None):
    from bench import data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lstm,transformer")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=60000, help="samples per epoch")
    ap.add_argument("--backends", default=",".join(FASTNN_BACKENDS))
    ap.add_argument("--splits", default="auto", help="fastnn thread use, of " + ",".join(SPLITS))
    ap.add_argument("--peers", default="torch,jax", help="peers to time besides fastnn ('none': fastnn only; "
                    "JAX only at batch 64)")
    ap.add_argument("--batches", default=str(BATCH), help="batch sizes, e.g. 32,64,128")
    ap.add_argument("--cpu", action="store_true", help="also print each contender's free-core estimate: "
                    "samples over the CPU time of the process's busiest thread (Linux; see busiest_thread_cpu)")
    args = ap.parse_args(argv)
    splits = args.splits.split(",")
    if any(s not in SPLITS for s in splits):
        ap.error(f"--splits takes {', '.join(SPLITS)}")
    if "jax" not in sys.modules and "XLA_FLAGS" not in os.environ and args.threads == 1:
        # XLA's CPU pool is fixed when JAX starts: one thread must be asked for before the import
        os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    X, y = sequences(*data.mnist_like(args.n))
    print(f"data: {data.data_source()}, {args.n} samples; threads {args.threads}; load average "
          f"{os.getloadavg()[0]:.2f}; median of {args.rounds} interleaved rounds (after one warm-up epoch each)")
    for model in args.models.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            _table(model, batch, X, y, args, splits)


def busiest_thread_cpu(fn):
    """Call ``fn()``; return the CPU seconds of the process's busiest thread during the call.

    A thread that waits (a barrier, a lock, an idle OpenMP worker past its short spin) sleeps, so on
    free cores the busiest thread's CPU time is the call's wall time. On a loaded machine it
    estimates what free cores would give, where wall-clock only shows who degrades least under
    load. Threads that end during the call (row-shard workers) count as one, with the CPU time the
    process spent beyond its living threads. Linux (``/proc/self/task``); 10 ms ticks.
    """
    import resource

    def per_thread():
        out = {}
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:  # the thread ended meanwhile
                continue
            out[tid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return out

    def process():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    before, total = per_thread(), process()
    fn()
    after, total = per_thread(), process() - total
    spent = [after[t] - before.get(t, 0.0) for t in after]
    return max(max(spent), total - sum(spent))


def _table(model, batch, X, y, args, splits):
    """One interleaved run of every contender of ``model`` at ``batch``, printed."""
    runs = [make(X, y) for make in _factories(model, args.threads, args.backends.split(","), splits,
                                               args.peers.split(","), batch)]
    cpu = {r.impl: [] for r in runs}
    calls = {r.impl: (lambda r=r: cpu[r.impl].append(busiest_thread_cpu(r))) if args.cpu else r for r in runs}
    times = interleaved_times(calls, args.rounds)
    med = {r.impl: (statistics.median(times[r.impl]), r.n_samples) for r in runs}
    print(f"\n{model}, batch {batch}, {args.threads} thread(s), load average now {os.getloadavg()[0]:.2f}")
    torch_rate = next((n / t for impl, (t, n) in med.items() if impl.startswith("torch")), None)
    for impl, (t, n) in med.items():
        ratio = f"  {n / t / torch_rate:5.2f}x torch" if torch_rate else ""
        free = f"  free-core estimate {n / statistics.median(cpu[impl][1:]):9,.0f} samples/s" if args.cpu else ""
        print(f"  {impl:36s} {n / t:9,.0f} samples/s  {t:7.2f} s/epoch{ratio}{free}  (rounds: "
              + ", ".join(f"{v:.2f}" for v in times[impl]) + ")")

if __name__ == "__main__":
    main()
