"""Peer implementations of one MLP training epoch, for side-by-side benchmarks.

Every factory ``make_<peer>_epoch(X, y, batch_size, threads, hidden, lr, seed)``
builds a 784-hidden-10 ReLU MLP (softmax cross-entropy, Adam) and returns a
:class:`PeerRun`: a zero-argument callable that runs ONE full epoch (shuffled
mini-batches, forward, loss, backward, Adam step) and returns the last
mini-batch loss. All setup (model, optimizer state, tensors, buffers) happens
in the factory, so a benchmark times only the epoch.

Peers
-----
torch       PyTorch eager, its best CPU configuration by default (fused Adam).
jax         JAX + optax Adam: a jitted step per batch (``mode="jit"``), or
            ``lax.scan`` over chunks of steps in one jitted call (``mode="scan"``).
sklearn     ``MLPClassifier(solver="adam").partial_fit``: one epoch per call.
numpy       From-scratch numpy loop (nnfs/Nielsen shape), unfused Adam.
gemm_floor  Only the 8 GEMMs of each training step: the BLAS + hardware limit.

All run in float32 with an explicit thread count. torch and sklearn are
imported lazily, so a missing peer raises ImportError only when asked for
(the benchmark tests use ``pytest.importorskip``).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np

__all__ = [
    "PeerRun",
    "PEERS",
    "n_steps",
    "samples_per_s",
    "gemm_flops_per_sample",
    "blas_limit",
    "blas_info",
    "make_torch_epoch",
    "make_torch_predict",
    "make_torch_latency",
    "make_jax_epoch",
    "make_sklearn_epoch",
    "make_numpy_epoch",
    "make_gemm_floor_epoch",
    "NumpyMLP",
]

N_CLASSES = 10


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
class PeerRun:
    """A benchmarkable zero-argument callable plus what it runs.

    Parameters
    ----------
    fn : callable
        Zero-argument function doing the timed work (one epoch, one predict
        pass, or one single-sample prediction).
    impl : str
        Peer/variant name, e.g. ``"torch-adam-fused"``.
    n_samples : int
        Samples processed per call (for samples/s).
    batch_size, threads : int
        Configuration, recorded for reports.
    dtype : str
        Floating dtype the peer actually computes in.
    """

    def __init__(self, fn, impl, n_samples, batch_size, threads, dtype="float32"):
        self.fn = fn
        self.impl = impl
        self.n_samples = int(n_samples)
        self.batch_size = int(batch_size)
        self.threads = int(threads)
        self.dtype = dtype

    def __call__(self):
        return self.fn()

    def __repr__(self):
        return (f"PeerRun(impl={self.impl!r}, n_samples={self.n_samples}, "
                f"batch_size={self.batch_size}, threads={self.threads}, dtype={self.dtype!r})")


def n_steps(n_samples, batch_size):
    """Mini-batch steps per epoch; the last, partial batch counts as a step."""
    return -(-int(n_samples) // int(batch_size))


def samples_per_s(n_samples, seconds):
    """Throughput of one epoch: ``n_samples / seconds`` (``nan`` if not timed)."""
    if not seconds or seconds <= 0 or not math.isfinite(seconds):
        return float("nan")
    return n_samples / seconds


def gemm_flops_per_sample(n_in=784, hidden=(256, 128), n_out=N_CLASSES):
    """FLOPs per sample of the 8 GEMMs of one training step.

    Forward and weight-gradient GEMMs cost ``2*in*out`` each per layer; the
    input gradient is needed for every layer but the first.
    """
    sizes = [n_in, *hidden, n_out]
    layers = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(2 * a * b for a, b in layers)
    return 2 * fwd + sum(2 * a * b for a, b in layers[1:])


@functools.lru_cache(maxsize=None)
def _blas_controller():
    # numpy and scipy each ship their own OpenBLAS; load scipy's before the
    # controller snapshots the loaded libraries so both get limited.
    try:
        import scipy.linalg  # noqa: F401
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def blas_limit(threads):
    """Context manager limiting every loaded BLAS (numpy's and scipy's) to ``threads``.

    Only ``user_api="blas"``: torch's OpenMP pool is left to
    ``torch.set_num_threads``.
    """
    return _blas_controller().limit(limits=int(threads), user_api="blas")


def blas_info():
    """One line per loaded BLAS: ``prefix version arch threads``."""
    out = []
    for lib in _blas_controller().info():
        if lib.get("user_api") == "blas":
            out.append(f"{lib.get('prefix')} {lib.get('version')} {lib.get('architecture')} "
                       f"threads={lib.get('num_threads')}")
    return out


def _check_xy(X, y, batch_size, threads):
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n, d) and y (n,), got {X.shape} and {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
        raise ValueError(f"labels must be in 0..{N_CLASSES - 1}")
    if int(batch_size) <= 0 or int(threads) <= 0:
        raise ValueError("batch_size and threads must be positive")
    return X, y


# --------------------------------------------------------------------------
# PyTorch
# --------------------------------------------------------------------------
def _torch_mlp(n_in, hidden, n_out, seed):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    sizes = [n_in, *hidden, n_out]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def make_torch_epoch(X, y, batch_size, threads, hidden=(256, 128), lr=1e-3, seed=0, adam="fused", optimizer="adam"):
    """One PyTorch training epoch in its best CPU configuration.

    Parameters
    ----------
    X : array-like of float32, shape (n, d)
    y : array-like of int, shape (n,)
    batch_size : int
    threads : int
        Passed to ``torch.set_num_threads`` at the start of every epoch.
    hidden : tuple of int, default (256, 128)
    lr : float, default 1e-3
    seed : int, default 0
        Seeds the weights and the shuffling generator.
    adam : {"fused", "foreach", "default"}, default "fused"
        ``"fused"`` uses ``Adam(fused=True)`` (falls back to ``"foreach"`` if
        the build rejects it on CPU); ``"default"`` is what a user gets from
        ``Adam(params, lr)``, which on CPU is the per-tensor for-loop.
    optimizer : {"adam", "sgd"}, default "adam"
        ``"sgd"``: plain SGD (no momentum) at ``lr``, in the same ``adam`` flavour
        (fused / foreach / default).

    Returns
    -------
    PeerRun
        Epoch callable returning the last mini-batch loss (float).

    Notes
    -----
    Data are converted to tensors once; batches are gathered with
    ``index_select`` on a per-epoch permutation (no DataLoader overhead), and
    gradients are cleared with ``zero_grad(set_to_none=True)``.
    """
    import torch

    X, y = _check_xy(X, y, batch_size, threads)
    n, bs, threads = X.shape[0], int(batch_size), int(threads)
    model = _torch_mlp(X.shape[1], hidden, N_CLASSES, seed)
    params = list(model.parameters())
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    make = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    if adam == "fused":
        try:
            opt = make(params, lr=lr, fused=True)
        except (RuntimeError, ValueError):
            adam = "foreach"
    if adam == "foreach":
        opt = make(params, lr=lr, foreach=True)
    elif adam == "default":
        opt = make(params, lr=lr)
    elif adam != "fused":
        raise ValueError(f"adam must be 'fused', 'foreach' or 'default', got {adam!r}")
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt = torch.from_numpy(X.copy())  # own, writable copy: the cache arrays are read-only
    yt = torch.from_numpy(y.copy())
    epoch = torch_epoch(model, opt, loss_fn, Xt, yt, bs, threads, seed)
    return PeerRun(epoch, f"torch-{optimizer}-{adam}", n, bs, threads, "float32")


def torch_epoch(model, opt, loss_fn, Xt, yt, batch_size, threads, seed=0):
    """A PyTorch epoch callable (returns the last mini-batch loss): ``threads`` set per call, batches
    gathered by ``index_select`` on a per-epoch permutation, gradients cleared with ``set_to_none``.
    The PyTorch peers of every benchmark (MLP, CNN, sequence models) train through it."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    n, bs = Xt.shape[0], int(batch_size)

    def epoch():
        torch.set_num_threads(threads)
        model.train()
        perm = torch.randperm(n, generator=gen)
        loss = None
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt.index_select(0, idx)), yt.index_select(0, idx))
            loss.backward()
            opt.step()
        return float(loss.detach())
    return epoch


def make_jax_epoch(X, y, batch_size, threads, hidden=(256, 128), lr=1e-3, seed=0, mode="jit", scan_steps=32):
    """One JAX training epoch: optax Adam, a jitted step per batch or ``lax.scan`` over chunks.

    Parameters
    ----------
    X, y, batch_size, hidden, lr, seed
        As :func:`make_torch_epoch`.
    threads : int
        Recorded only: XLA's CPU thread pool is fixed when JAX starts (it uses every core
        unless ``XLA_FLAGS`` says otherwise), so the row reports what the process had.
    mode : {"jit", "scan"}, default "jit"
        ``"jit"``: one jitted call per mini-batch (what most JAX training loops do);
        ``"scan"``: ``scan_steps`` mini-batches per jitted call through ``jax.lax.scan``,
        which removes the per-call dispatch (~30-60 us) -- JAX's fastest CPU loop.
    scan_steps : int, default 32

    Notes
    -----
    The epoch's full batches run inside the jitted calls; a ragged last batch runs as one
    more jitted step (a second compiled shape, compiled in the warm-up round).
    """
    import jax
    import jax.numpy as jnp
    import optax

    if mode not in ("jit", "scan"):
        raise ValueError(f"mode must be 'jit' or 'scan', got {mode!r}")
    X, y = _check_xy(X, y, batch_size, threads)
    n, bs = X.shape[0], int(batch_size)
    sizes = [X.shape[1], *hidden, N_CLASSES]
    key = jax.random.PRNGKey(seed)
    params = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (a, b), jnp.float32) * math.sqrt(2.0 / a), jnp.zeros(b, jnp.float32)))
    opt = optax.adam(lr)
    state = {"params": params, "opt": opt.init(params)}

    def loss_fn(p, xb, yb):
        h = xb
        for W, b in p[:-1]:
            h = jax.nn.relu(h @ W + b)
        logits = h @ p[-1][0] + p[-1][1]
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    def step(carry, batch):
        p, s = carry
        loss, g = jax.value_and_grad(loss_fn)(p, *batch)
        updates, s = opt.update(g, s, p)
        return (optax.apply_updates(p, updates), s), loss

    jit_step = jax.jit(lambda p, s, xb, yb: step((p, s), (xb, yb)))

    @jax.jit
    def scan_chunk(p, s, xs, ys):
        (p, s), losses = jax.lax.scan(step, (p, s), (xs, ys))
        return p, s, losses[-1]

    Xj, yj = jnp.asarray(X), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(seed)
    n_full = n // bs

    def epoch():
        p, s = state["params"], state["opt"]
        perm = jnp.asarray(rng.permutation(n))
        loss = None
        if mode == "scan":
            xs_all = Xj[perm[:n_full * bs]].reshape(n_full, bs, -1)
            ys_all = yj[perm[:n_full * bs]].reshape(n_full, bs)
            for c in range(0, n_full - n_full % scan_steps, scan_steps):
                p, s, loss = scan_chunk(p, s, xs_all[c:c + scan_steps], ys_all[c:c + scan_steps])
            for j in range(n_full - n_full % scan_steps, n_full):  # the chunk remainder, step by step
                (p, s), loss = jit_step(p, s, xs_all[j], ys_all[j])
        else:
            for j in range(n_full):
                idx = perm[j * bs:(j + 1) * bs]
                (p, s), loss = jit_step(p, s, Xj[idx], yj[idx])
        if n_full * bs < n:
            idx = perm[n_full * bs:]
            (p, s), loss = jit_step(p, s, Xj[idx], yj[idx])
        state["params"], state["opt"] = p, s
        return float(loss)

    return PeerRun(epoch, f"jax-{mode}", n, bs, threads, "float32")


def make_torch_predict(X, batch=1000, threads=1, hidden=(256, 128), seed=0):
    """Batched PyTorch inference over all of ``X`` (eager, ``inference_mode``).

    Returns
    -------
    PeerRun
        Callable returning the predicted labels (ndarray of int64, shape (n,)).
    """
    import torch

    X = np.ascontiguousarray(X, dtype=np.float32)
    n, bs, threads = X.shape[0], int(batch), int(threads)
    model = _torch_mlp(X.shape[1], hidden, N_CLASSES, seed).eval()
    Xt = torch.from_numpy(X.copy())
    out = torch.empty(n, dtype=torch.int64)

    def predict():
        torch.set_num_threads(threads)
        with torch.inference_mode():
            for s in range(0, n, bs):
                out[s:s + bs] = model(Xt[s:s + bs]).argmax(1)
        return out.numpy()

    return PeerRun(predict, "torch-predict-eager", n, bs, threads, "float32")


def make_torch_latency(X, threads=1, mode="eager", hidden=(256, 128), seed=0, pool=64):
    """Single-sample PyTorch prediction, for latency.

    Parameters
    ----------
    X : array-like of float32, shape (n, d)
        The first ``pool`` rows are pre-made into (1, d) tensors and cycled,
        so slicing/conversion is not timed.
    threads : int, default 1
    mode : {"eager", "jit"}, default "eager"
        ``"jit"`` is TorchScript: ``torch.jit.trace`` + ``torch.jit.freeze``
        (deprecated in torch 2.x but still the lowest-latency eager-free path).

    Returns
    -------
    PeerRun
        Callable predicting one sample, returning its label (int).
    """
    import torch

    X = np.ascontiguousarray(X, dtype=np.float32)
    model = _torch_mlp(X.shape[1], hidden, N_CLASSES, seed).eval()
    rows = [torch.from_numpy(X[i:i + 1].copy()) for i in range(min(pool, X.shape[0]))]
    if mode == "jit":
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.freeze(torch.jit.trace(model, rows[0]))
    elif mode != "eager":
        raise ValueError(f"mode must be 'eager' or 'jit', got {mode!r}")
    threads = int(threads)
    state = {"i": 0}

    def predict_one():
        torch.set_num_threads(threads)  # cheap when unchanged
        i = state["i"] = (state["i"] + 1) % len(rows)
        with torch.inference_mode():
            return int(model(rows[i]).argmax(1))

    return PeerRun(predict_one, f"torch-latency-{mode}", 1, 1, threads, "float32")


# --------------------------------------------------------------------------
# scikit-learn
# --------------------------------------------------------------------------
def make_sklearn_epoch(X, y, batch_size, threads, hidden=(256, 128), lr=1e-3, seed=0):
    """One scikit-learn ``MLPClassifier`` epoch via ``partial_fit``.

    ``partial_fit`` runs exactly one shuffled pass over the data and keeps
    weights and Adam state between calls (``fit(max_iter=1)`` would re-init
    every call). ``alpha=0`` (no L2) to match the other peers. scikit-learn
    >= 1.x keeps float32 input in float32; the dtype actually used is read
    back from ``coefs_`` after the first call and stored on the returned
    ``PeerRun.dtype``. BLAS threads are limited with threadpoolctl.

    Returns
    -------
    PeerRun
        Epoch callable returning sklearn's epoch loss (float).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    X, y = _check_xy(X, y, batch_size, threads)
    bs, threads = int(batch_size), int(threads)
    clf = MLPClassifier(hidden_layer_sizes=tuple(hidden), activation="relu", solver="adam",
                        alpha=0.0, batch_size=bs, learning_rate_init=lr, max_iter=1,
                        shuffle=True, random_state=seed)
    classes = np.arange(N_CLASSES)
    run = PeerRun(None, "sklearn-mlp-adam", X.shape[0], bs, threads, "unknown")

    def epoch():
        with blas_limit(threads), warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.partial_fit(X, y, classes=classes)
        run.dtype = str(clf.coefs_[0].dtype)
        return float(clf.loss_)

    run.fn = epoch
    return run


# --------------------------------------------------------------------------
# plain numpy
# --------------------------------------------------------------------------
class NumpyMLP:
    """A from-scratch numpy MLP: dense + ReLU layers, softmax-CE, Adam.

    Written the way tutorials (nnfs, Nielsen) write it -- one numpy call per
    operation, a new array per intermediate, unfused Adam -- but float32
    throughout, so it is an honest baseline for "just use numpy".

    Parameters
    ----------
    sizes : sequence of int
        Layer widths, input first, e.g. ``(784, 256, 128, 10)``.
    lr : float
    seed : int
        He-uniform initialisation seed.
    """

    def __init__(self, sizes, lr=1e-3, seed=0, beta1=0.9, beta2=0.999, eps=1e-8):
        rng = np.random.default_rng(seed)
        self.W, self.b = [], []
        for a, b in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / a)
            self.W.append(rng.uniform(-limit, limit, (a, b)).astype(np.float32))
            self.b.append(np.zeros(b, np.float32))
        self.params = self.W + self.b
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.lr, self.beta1, self.beta2, self.eps, self.t = lr, beta1, beta2, eps, 0

    def forward(self, X):
        """Return the activations ``[X, A1, ..., Z_last]`` (logits last)."""
        acts = [X]
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            Z = acts[-1] @ W + b
            acts.append(Z if i == len(self.W) - 1 else np.maximum(Z, 0))
        return acts

    @staticmethod
    def softmax_ce(Z, y):
        """Mean cross-entropy of logits ``Z`` and its gradient ``dZ``."""
        Z = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(Z)
        P = E / E.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = -np.log(P[rows, y] + 1e-12).mean()
        P[rows, y] -= 1
        P /= len(y)
        return float(loss), P

    def backward(self, acts, dZ):
        """Gradients ``dW + db`` (same order as ``params``) from the output ``dZ``."""
        L = len(self.W)
        dW, db = [None] * L, [None] * L
        for i in reversed(range(L)):
            dW[i] = acts[i].T @ dZ
            db[i] = dZ.sum(axis=0)
            if i:
                # ReLU derivative from the activation: A > 0.
                dZ = (dZ @ self.W[i].T) * (acts[i] > 0)
        return dW + db

    def adam_step(self, grads):
        """Unfused Adam update of every parameter in place."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        step = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * (g * g)
            p -= step * m / (np.sqrt(v) + self.eps)

    def train_step(self, X, y):
        """Forward, loss, backward and Adam on one mini-batch; returns the loss."""
        acts = self.forward(X)
        loss, dZ = self.softmax_ce(acts[-1], y)
        self.adam_step(self.backward(acts, dZ))
        return loss


def make_numpy_epoch(X, y, batch_size, threads, hidden=(256, 128), lr=1e-3, seed=0):
    """One epoch of the from-scratch :class:`NumpyMLP` (float32, BLAS limited to ``threads``).

    Returns
    -------
    PeerRun
        Epoch callable returning the last mini-batch loss (float).
    """
    X, y = _check_xy(X, y, batch_size, threads)
    n, bs, threads = X.shape[0], int(batch_size), int(threads)
    net = NumpyMLP((X.shape[1], *hidden, N_CLASSES), lr=lr, seed=seed)
    rng = np.random.default_rng(seed)

    def epoch():
        with blas_limit(threads):
            perm = rng.permutation(n)
            loss = float("nan")
            for s in range(0, n, bs):
                idx = perm[s:s + bs]
                loss = net.train_step(X[idx], y[idx])
        return loss

    return PeerRun(epoch, "numpy-loop", n, bs, threads, "float32")


# --------------------------------------------------------------------------
# GEMM floor
# --------------------------------------------------------------------------
def make_gemm_floor_epoch(X, y, batch_size, threads, hidden=(256, 128), lr=1e-3, seed=0):
    """Only the GEMMs of one epoch: the BLAS + hardware limit for this MLP.

    Per step (batch rows ``m``), with preallocated float32 outputs
    (``np.matmul(a, b, out=...)``, transposes as views so BLAS gets trans
    flags, no copies), for layers ``W1 .. WL`` (two hidden layers shown)::

        forward        X @ W1,      A1 @ W2,     A2 @ W3
        weight grads   X.T @ dZ1,   A1.T @ dZ2,  A2.T @ dZ3
        input grads    dZ3 @ W3.T,  dZ2 @ W2.T

    ``X`` rows are taken as contiguous slices in order (no gather, no
    shuffle), ``dZ*`` are fixed random buffers; ``ceil(n / batch_size)``
    steps with the same partial last batch as the real peers. BLAS threads
    (numpy's and scipy's OpenBLAS) are limited to ``threads``. ``y``,
    ``lr`` are unused (signature shared with the other peers).

    Returns
    -------
    PeerRun
        Callable returning ``None``.
    """
    X, _ = _check_xy(X, y, batch_size, threads)
    n, bs, threads = X.shape[0], int(batch_size), int(threads)
    f32 = np.float32
    rng = np.random.default_rng(seed)
    sizes = [X.shape[1], *hidden, N_CLASSES]
    W = [(rng.standard_normal((a, b)) * 0.05).astype(f32) for a, b in zip(sizes[:-1], sizes[1:])]
    A = [np.empty((bs, b), f32) for b in sizes[1:]]                     # layer outputs
    dZ = [rng.standard_normal((bs, b)).astype(f32) for b in sizes[1:]]  # output gradients
    dA = [np.empty((bs, a), f32) for a in sizes[1:-1]]                  # input gradients of layers 2..L
    dW = [np.empty_like(w) for w in W]
    WT = [w.T for w in W]
    mm = np.matmul
    spans = [(s, min(s + bs, n)) for s in range(0, n, bs)]
    n_layers = len(W)

    def epoch():
        with blas_limit(threads):
            for s, e in spans:
                m = e - s
                xb = X[s:e]
                inputs = [xb] + [a[:m] for a in A[:-1]]
                for i in range(n_layers):
                    mm(inputs[i], W[i], out=A[i][:m])
                for i in range(n_layers - 1, 0, -1):
                    mm(dZ[i][:m], WT[i], out=dA[i - 1][:m])
                for i in range(n_layers):
                    mm(inputs[i].T, dZ[i][:m], out=dW[i])

    return PeerRun(epoch, "gemm-floor", n, bs, threads, "float32")


PEERS = {
    "torch": make_torch_epoch,
    "jax": make_jax_epoch,
    "sklearn": make_sklearn_epoch,
    "numpy": make_numpy_epoch,
    "gemm_floor": make_gemm_floor_epoch,
}
"""Peer name -> epoch factory, all with the same signature."""
