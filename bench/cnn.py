"""CNN epochs (issue 11): fastnn vs PyTorch vs JAX vs the im2col-GEMM floor, same models, same optimizer.

Models (28x28x1 MNIST, 10 classes, SGD lr 0.01 momentum 0.9, softmax cross-entropy, float32):

- ``example``: the CNN of ``examples/train_mnist_cnn.py`` -- Conv(32, 3x3, relu), MaxPool 2,
  Conv(64, 3x3, relu), MaxPool 2, Flatten, Dense(128, relu), Dense(10);
- ``lenet5``: LeNet-5 sized -- Conv(6, 5x5 same, relu), MaxPool 2, Conv(16, 5x5, relu), MaxPool 2,
  Flatten, Dense(120, relu), Dense(84, relu), Dense(10);
- ``example-bn``: the example with each conv as Conv(bias-free) -> BatchNorm -> ReLU (PyTorch:
  ``Conv2d(bias=False)`` + ``BatchNorm2d`` + ``ReLU``; no JAX peer). Its table also times the plain
  example's fastnn rows in the same rounds and prints the ratio (BatchNorm's cost on the fused path).

Every factory has the shape of :mod:`bench.peers`' (``X (n, 784), y, batch_size, threads``) plus
``model`` and returns a :class:`bench.peers.PeerRun` of ONE epoch. Interleaved comparison (what the
README reports; each round runs every contender once, in turn, so load drift hits all alike)::

    FASTNN_DATA=../shared/data/mnist python -m bench.cnn --rounds 3 --batch-sizes 32,128
"""
from __future__ import annotations

import argparse
import math
import statistics

import numpy as np

from bench.peers import PeerRun, _check_xy, blas_limit, torch_epoch
from bench.timing import interleaved_times

MODELS = {
    # (conv layers as (filters, kernel, padding), dense hidden widths)
    "example": ([(32, 3, "valid"), (64, 3, "valid")], (128,)),
    "lenet5": ([(6, 5, "same"), (16, 5, "valid")], (120, 84)),
}
MODELS["example-bn"] = MODELS["example"]  # the same GEMMs; each conv without bias, then BatchNorm + ReLU
BN_MODELS = {"example-bn": "example"}     # model -> the plain model its table is compared with
LR, MOMENTUM = 0.01, 0.9


def _geometry(model):
    """Per conv layer (H_in, W_in, C_in, Ho, Wo, F, k, pad); the flattened width; dense widths."""
    convs, hidden = MODELS[model]
    H, C, out = 28, 1, []
    for F, k, padding in convs:
        Ho = H if padding == "same" else H - k + 1
        out.append((H, H, C, Ho, Ho, F, k, (k - 1) // 2 if padding == "same" else 0))
        H, C = Ho // 2, F
    return out, H * H * C, hidden


def gemm_flops_per_sample(model):
    """FLOPs of one training step's GEMMs per sample: forward, weight and input gradients (not the first input)."""
    convs, flat, hidden = _geometry(model)
    flops = 0
    for q, (H, W, C, Ho, Wo, F, k, _) in enumerate(convs):
        mac = Ho * Wo * k * k * C * F
        flops += 2 * mac * (2 if q == 0 else 3)
    sizes = [flat, *hidden, 10]
    for a, b in zip(sizes[:-1], sizes[1:]):
        flops += 2 * a * b * 3
    return flops


def _images(X):
    return np.ascontiguousarray(X, np.float32).reshape(-1, 28, 28, 1)


def make_fastnn_cnn_epoch(X, y, batch_size, threads, model="example", backend="cython", seed=0, path="auto"):
    """One fastnn epoch; ``path='per-layer'`` runs the layer-by-layer path instead of the compiled plan."""
    import fastnn as fnn

    convs, hidden = MODELS[model]
    layers = []
    for F, k, padding in convs:
        if model in BN_MODELS:
            layers += [fnn.Conv2D(F, k, padding=padding, use_bias=False), fnn.BatchNorm(), fnn.Activation("relu")]
        else:
            layers.append(fnn.Conv2D(F, k, padding=padding, activation="relu"))
        layers.append(fnn.MaxPool2D(2))
    layers.append(fnn.Flatten())
    layers += [fnn.Dense(u, "relu") for u in hidden] + [fnn.Dense(10)]
    net = fnn.Network(layers, input_shape=(28, 28, 1), seed=seed, backend=backend)
    trainer = fnn.Trainer(net, optimizer=fnn.SGD(LR, momentum=MOMENTUM), batch_size=batch_size, seed=seed,
                          n_threads=threads, verbose=0, path=path)
    X, y = _images(X), np.asarray(y)

    def epoch():
        return trainer.fit(X, y, epochs=1)["loss"][-1]

    suffix = "" if path == "auto" else f"-{path}"
    run = PeerRun(epoch, f"fastnn-{backend}{suffix}-{model}", X.shape[0], batch_size, threads)
    return run


def make_torch_cnn_epoch(X, y, batch_size, threads, model="example", seed=0):
    import torch

    X, y = _check_xy(X, y, batch_size, threads)
    torch.manual_seed(seed)
    convs, flat, hidden = _geometry(model)
    mods, c_in = [], 1
    for (_, _, _, _, _, F, k, pad) in convs:
        if model in BN_MODELS:
            mods += [torch.nn.Conv2d(c_in, F, k, padding=pad, bias=False), torch.nn.BatchNorm2d(F)]
        else:
            mods.append(torch.nn.Conv2d(c_in, F, k, padding=pad))
        mods += [torch.nn.ReLU(), torch.nn.MaxPool2d(2)]
        c_in = F
    mods.append(torch.nn.Flatten())
    width = flat
    for u in hidden:
        mods += [torch.nn.Linear(width, u), torch.nn.ReLU()]
        width = u
    mods.append(torch.nn.Linear(width, 10))
    net = torch.nn.Sequential(*mods)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt = torch.from_numpy(X.reshape(-1, 1, 28, 28).copy())
    yt = torch.from_numpy(y.copy())
    epoch = torch_epoch(net, opt, loss_fn, Xt, yt, batch_size, threads, seed)
    return PeerRun(epoch, f"torch-{model}", X.shape[0], int(batch_size), threads)


def make_jax_cnn_epoch(X, y, batch_size, threads, model="example", seed=0):
    """A jitted step per batch (NHWC convolutions through ``lax.conv_general_dilated``); optax SGD + momentum."""
    if model in BN_MODELS:
        raise ValueError(f"the JAX peer has no BatchNorm model ({model!r})")
    import jax
    import jax.numpy as jnp
    import optax

    X, y = _check_xy(X, y, batch_size, threads)
    convs, flat, hidden = _geometry(model)
    key = jax.random.PRNGKey(seed)
    params = []
    for (_, _, C, _, _, F, k, _) in convs:
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (k, k, C, F)) * math.sqrt(2.0 / (k * k * C)), jnp.zeros(F)))
    sizes = [flat, *hidden, 10]
    for a, b in zip(sizes[:-1], sizes[1:]):
        key, sub = jax.random.split(key)
        params.append((jax.random.normal(sub, (a, b)) * math.sqrt(2.0 / a), jnp.zeros(b)))
    n_conv = len(convs)
    pads = [("SAME" if pad else "VALID") for (*_, pad) in convs]
    opt = optax.sgd(LR, momentum=MOMENTUM)
    state = {"params": params, "opt": opt.init(params)}

    def loss_fn(p, xb, yb):
        h = xb
        for q in range(n_conv):
            W, b = p[q]
            h = jax.lax.conv_general_dilated(h, W, (1, 1), pads[q], dimension_numbers=("NHWC", "HWIO", "NHWC"))
            h = jax.nn.relu(h + b)
            h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = h.reshape(h.shape[0], -1)
        for W, b in p[n_conv:-1]:
            h = jax.nn.relu(h @ W + b)
        logits = h @ p[-1][0] + p[-1][1]
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()

    @jax.jit
    def step(p, s, xb, yb):
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    Xj, yj = jnp.asarray(X.reshape(-1, 28, 28, 1)), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(seed)
    n, bs = X.shape[0], int(batch_size)

    def epoch():
        p, s = state["params"], state["opt"]
        perm = jnp.asarray(rng.permutation(n))
        loss = None
        for lo in range(0, n, bs):
            idx = perm[lo:lo + bs]
            p, s, loss = step(p, s, Xj[idx], yj[idx])
        state["params"], state["opt"] = p, s
        return float(loss)

    return PeerRun(epoch, f"jax-jit-{model}", n, bs, threads)


def _conv_tile(Ho, Wo, k, C, F, rows):
    """Images per tile of the compiled drivers' conv row of this geometry on ``rows`` rows (float32):
    the one tile rule, :func:`fastnn.kernels.tiling.conv_tile_images`."""
    from fastnn.kernels.tiling import conv_tile_images

    return conv_tile_images(Ho * Wo, k * k * C, F, rows, 4)


def make_gemm_floor_cnn_epoch(X, y, batch_size, threads, model="example", seed=0):
    """Only the step's GEMMs, on preallocated float32 im2col-shaped operands: no im2col, pooling,
    activation or update. Per conv layer (rows m = batch * Ho * Wo, K = k*k*C): cols @ W, cols.T @ dZ,
    and dZ @ W.T except for the first layer; per dense layer the same three.

    Conv layers run their GEMMs in the tiles of images the Cython driver uses (``conv_tile_images``,
    csrc/plan_conv.pxi; the weight gradient accumulated with beta = 1), on tile-sized operands reused
    for every tile, so they stay in cache as the driver's tiles do at best: the floor still bounds
    the tiled algorithm (on whole-shard operands its GEMMs ran 2x slower than the driver's tiles).

    With several threads each batch is split into row shards, one per thread, each running its
    GEMMs with one-thread BLAS (numpy releases the GIL): threaded BLAS on these shapes collapses on
    a loaded machine (measured 5-30x slower than one thread here), which would make the floor
    meaningless. The floor's own hand-off between threads is included."""
    import threading

    X, _ = _check_xy(X, y, batch_size, threads)
    convs, flat, hidden = _geometry(model)
    rng = np.random.default_rng(seed)
    f32 = np.float32
    bs, n = int(batch_size), X.shape[0]
    n_shards = max(1, min(int(threads), bs))
    cap = -(-bs // n_shards)
    shapes = [(Ho * Wo, k * k * C, F, _conv_tile(Ho, Wo, k, C, F, cap)) for (_, _, C, Ho, Wo, F, k, _) in convs]
    sizes = [flat, *hidden, 10]
    shapes += [(1, a, b, None) for a, b in zip(sizes[:-1], sizes[1:])]

    def shard_buffers():
        bufs = []
        for q, (p, K, F, tile) in enumerate(shapes):
            m = (tile or cap) * p
            bufs.append(dict(cols=rng.random((m, K), dtype=f32), W=rng.random((K, F), dtype=f32),
                             Z=np.empty((m, F), f32), dZ=rng.random((m, F), dtype=f32),
                             dW=np.zeros((K, F), f32), dW_tile=np.zeros((K, F), f32), dcols=np.empty((m, K), f32) if q > 0 else None, p=p,
                             tile=tile))
        return bufs

    shards = [shard_buffers() for _ in range(n_shards)]
    spans = [(s, min(s + bs, n)) for s in range(0, n, bs)]
    mm = np.matmul

    def gemms(bufs, rows):
        for b in bufs:
            if b["tile"] is None:
                m = rows * b["p"]
                mm(b["cols"][:m], b["W"], out=b["Z"][:m])
                mm(b["cols"][:m].T, b["dZ"][:m], out=b["dW"])
                if b["dcols"] is not None:
                    mm(b["dZ"][:m], b["W"].T, out=b["dcols"][:m])
                continue
            for b0 in range(0, rows, b["tile"]):
                m = min(b["tile"], rows - b0) * b["p"]
                mm(b["cols"][:m], b["W"], out=b["Z"][:m])
                # dW += cols.T @ dZ (the driver's beta = 1 after the first tile). numpy's matmul, not
                # scipy's sgemm: the f2py BLAS wrappers hold the GIL, which serialised the shards'
                # GEMMs (the 2-thread floor ran at the 1-thread floor's speed). The add is K x F: noise.
                if b0 == 0:
                    mm(b["cols"][:m].T, b["dZ"][:m], out=b["dW"])
                else:
                    mm(b["cols"][:m].T, b["dZ"][:m], out=b["dW_tile"])
                    b["dW"] += b["dW_tile"]
                if b["dcols"] is not None:
                    mm(b["dZ"][:m], b["W"].T, out=b["dcols"][:m])

    def epoch():
        with blas_limit(1):
            if n_shards == 1:
                for s, e in spans:
                    gemms(shards[0], e - s)
                return
            start, done = threading.Barrier(n_shards), threading.Barrier(n_shards)
            job = {}

            def worker(k):
                while True:
                    start.wait()
                    if job["stop"]:
                        return
                    gemms(shards[k], job["rows"][k])
                    done.wait()

            workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(1, n_shards)]
            job["stop"] = False
            for t in workers:
                t.start()
            for s, e in spans:
                m = e - s
                per = -(-m // n_shards)
                job["rows"] = [max(0, min(per, m - k * per)) for k in range(n_shards)]
                start.wait()
                gemms(shards[0], job["rows"][0])
                done.wait()
            job["stop"] = True
            start.wait()
            for t in workers:
                t.join()

    return PeerRun(epoch, f"gemm-floor-{model}", n, bs, threads)


def make_fastnn_numba_cnn_epoch(X, y, batch_size, threads, model="example", seed=0):
    """The fused plan on the Numba backend."""
    return make_fastnn_cnn_epoch(X, y, batch_size, threads, model=model, backend="numba", seed=seed)


def make_fastnn_im2col_cnn_epoch(X, y, batch_size, threads, model="example", seed=0):
    """The fused plan on the Cython backend with every conv row on im2col + GEMM
    (``_kernels.conv_direct(False)`` around each epoch): the direct one-channel kernels' baseline,
    interleaved with ``fastnn`` in one process."""
    from fastnn._ext import _kernels

    run = make_fastnn_cnn_epoch(X, y, batch_size, threads, model=model, seed=seed)
    inner = run.fn

    def epoch():
        before = _kernels.conv_direct()  # (conv_direct(False) returns the new setting)
        _kernels.conv_direct(False)
        try:
            return inner()
        finally:
            _kernels.conv_direct(before)

    run.fn, run.impl = epoch, f"fastnn-im2col-{model}"
    return run


def make_fastnn_per_layer_cnn_epoch(X, y, batch_size, threads, model="example", seed=0):
    """The per-layer path (row shards of Python threads), what conv nets ran before their plan rows."""
    return make_fastnn_cnn_epoch(X, y, batch_size, threads, model=model, seed=seed, path="per-layer")


FACTORIES = {"fastnn": make_fastnn_cnn_epoch, "fastnn-im2col": make_fastnn_im2col_cnn_epoch,
             "fastnn-numba": make_fastnn_numba_cnn_epoch,
             "fastnn-per-layer": make_fastnn_per_layer_cnn_epoch, "torch": make_torch_cnn_epoch,
             "jax": make_jax_cnn_epoch, "gemm-floor": make_gemm_floor_cnn_epoch}


def _available(name, model="example"):
    import importlib.util

    if name == "jax" and model in BN_MODELS:
        return False
    need = {"torch": ("torch",), "jax": ("jax", "optax")}.get(name, ())
    return all(importlib.util.find_spec(m) is not None for m in need)


def main(argv=None):
    from bench import data

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="example,lenet5,example-bn")
    ap.add_argument("--batch-sizes", default="32,128")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n", type=int, default=60000, help="samples per epoch")
    ap.add_argument("--peers", default="fastnn,fastnn-im2col,fastnn-numba,torch,jax,gemm-floor",
                    help=f"comma-separated, of {', '.join(FACTORIES)}")
    args = ap.parse_args(argv)
    X, y = data.mnist_like(args.n)
    print(f"data: {data.data_source()}, {args.n} samples; threads {args.threads}; median of {args.rounds} "
          f"interleaved rounds (after one warm-up epoch each)")
    for model in args.models.split(","):
        for bs in (int(b) for b in args.batch_sizes.split(",")):
            peers = [p for p in args.peers.split(",") if _available(p, model)]
            runs = [FACTORIES[p](X, y, bs, args.threads, model=model) for p in peers]
            if model in BN_MODELS:  # the plain model's fastnn rows in the same rounds: BatchNorm's cost
                runs += [FACTORIES[p](X, y, bs, args.threads, model=BN_MODELS[model]) for p in peers
                         if p.startswith("fastnn")]
            times = interleaved_times({r.impl: r for r in runs}, args.rounds)
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"\n{model}, batch {bs} ({gemm_flops_per_sample(model) / 1e6:.1f} MFLOP of GEMMs per sample)")
            for impl, t in med.items():
                print(f"  {impl:28s} {args.n / t:10,.0f} samples/s  {t:7.2f} s/epoch  (rounds: "
                      + ", ".join(f"{v:.2f}" for v in times[impl]) + ")")
            for mine in [k for k in med if k.startswith("fastnn") and k.endswith(f"-{model}")]:
                if mine.startswith("fastnn-cython") and f"fastnn-im2col-{model}" in med:
                    print(f"  {mine} / fastnn-im2col-{model} (samples/s): "
                          f"{med[f'fastnn-im2col-{model}'] / med[mine]:.2f}")
                plain = mine[:-len(model)] + BN_MODELS.get(model, "")
                if plain in med and plain != mine:
                    print(f"  {mine} / {plain} (samples/s): {med[plain] / med[mine]:.2f}")
                for peer in ("torch", "jax-jit", "gemm-floor"):
                    other = [v for k, v in med.items() if k.startswith(peer)]
                    if other:  # a ratio of speeds: the peer's time over fastnn's
                        label = "share of the im2col-GEMM floor" if peer == "gemm-floor" else f"/ {peer}"
                        print(f"  {mine} {label}: {other[0] / med[mine]:.2f}")


if __name__ == "__main__":
    main()
