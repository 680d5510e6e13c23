"""Threads and determinism of the parallel kernels.

What holds (checked here):

- The sharded whole-run drivers (numba ``prange``, Cython OpenMP ``prange``)
  and the parallel fused clip + optimizer update they end with give
  **bit-identical** results for a given shard count whatever the number of
  threads running them (1, 2 or 8; 8 oversubscribes a 2-core machine), and
  over 50 repeats: shards reduce in a fixed order, the update runs over fixed
  chunks with per-chunk norms summed serially (in the numba driver by explicit
  loops: an ``arr.sum()`` inside a ``parallel=True`` function would become a
  thread-count-dependent parallel reduction).
- A different *shard count* is a different summation order: equal to the
  1-shard result within float tolerance, not bitwise. Since ``Trainer`` picks
  one shard per thread (``parallel='auto'/'shards'``), the thread count is
  part of what makes a run reproducible on the compiled backends; the BLAS
  thread count is not (``parallel='blas'`` gives the same bits with 1 or 2
  BLAS threads here). The reference backend gives the same bits whatever the
  thread settings.
- ``Network.predict`` called from 4 Python threads at once on both compiled
  backends never aborts and returns the single-threaded results; parallel
  Numba kernels launched from 4 Python threads at once do not abort either
  with the threading layer in use (the ``workqueue`` layer would abort: the
  test reports the layer and runs in a subprocess so an abort is a failure,
  not a crash of the test run).

Multi-thread runs happen in subprocesses: ``NUMBA_NUM_THREADS`` fixes Numba's
pool at import, ``OMP_THREAD_LIMIT`` caps the Cython OpenMP team.
"""
import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import fastnn as fnn
from fastnn.kernels import available_backends, get_backend

REPO = Path(__file__).resolve().parents[2]
COMPILED = [b for b in ("numba", "cython") if b in available_backends()]

# ---------------------------------------------------------------------------- kernel worker (subprocess)

WORKER = textwrap.dedent(r'''
    import hashlib, json, sys
    import numpy as np
    import numba
    from threadpoolctl import threadpool_limits
    from fastnn.kernels import get_backend
    from fastnn.kernels.codes import (H_BETA1, H_BETA2, H_CLIP_NORM, H_CLIP_VALUE, H_EPS, H_LR, H_MOMENTUM,
                                      N_HYPER, OPT_ADAM, OPT_SGD)
    from kernels.helpers import dense_plan  # tests/ is on sys.path (pytest, _env)

    threads, out_path, repeats = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    rng = np.random.default_rng(0)
    sizes = (100, 300, 10)                        # 33,310 parameters: 3 chunks of the parallel update
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    n, bs = 500, 128                              # ragged last batch (116 rows)
    X64 = rng.standard_normal((n, sizes[0]))
    Y64 = rng.integers(0, sizes[-1], (n, 1)).astype(np.float64)
    P64 = rng.standard_normal(n_params) * 0.1
    perm = rng.permutation(n).astype(np.int64)
    starts = np.arange(0, n, bs, dtype=np.int64)
    configs = {
        "adam-clip": (OPT_ADAM, {H_LR: 1e-2, H_BETA1: 0.9, H_BETA2: 0.999, H_EPS: 1e-8,
                                 H_CLIP_NORM: 0.5, H_CLIP_VALUE: 0.01}, repeats),
        "sgd-momentum": (OPT_SGD, {H_LR: 0.05, H_MOMENTUM: 0.9}, max(repeats // 5, 2)),
    }
    results, arrays = {}, {}
    kernels = {b: get_backend(b) for b in ("numba", "cython")}  # load scipy's BLAS before limiting it
    with threadpool_limits(1, user_api="blas"):
        for backend, kern in kernels.items():
            for dtype in (np.float32, np.float64):
                X, Y, P0 = X64.astype(dtype), Y64.astype(dtype), P64.astype(dtype)
                for cfg, (opt, hv, reps) in configs.items():
                    if dtype == np.float64 and cfg != "adam-clip":
                        continue
                    hyper = np.zeros(N_HYPER)
                    for k, v in hv.items():
                        hyper[k] = v
                    reps = reps if dtype == np.float32 else max(reps // 5, 2)
                    for shards in (1, 2, 3, 8):
                        digests, loss_digests = set(), set()
                        for _ in range(reps):
                            plan = dense_plan(sizes, (1, 0), bs, shards, dtype, opt=opt, hyper=hyper, params=P0)
                            p, st = plan.params, plan.state
                            bl, bc = np.zeros(len(starts)), np.zeros(len(starts))
                            kern.train_steps(plan, X, Y, perm, starts, np.full(len(starts), hyper[H_LR]), 0,
                                             bl, bc)
                            digests.add(hashlib.sha256(p.tobytes() + st.tobytes()).hexdigest())
                            loss_digests.add(hashlib.sha256(bl.tobytes() + bc.tobytes()).hexdigest())
                        key = f"{backend}-{np.dtype(dtype).name}-{cfg}-{shards}"
                        results[key] = {"digests": sorted(digests), "loss_digests": sorted(loss_digests),
                                        "runs": reps}
                        arrays[key] = p
    np.savez(out_path, **arrays)
    print(json.dumps({"threads": threads, "numba_threads": numba.get_num_threads(),
                      "numba_pool": numba.config.NUMBA_NUM_THREADS, "layer": numba.threading_layer(),
                      "results": results}))
''')


def _env(threads):
    env = dict(os.environ)
    env.update(NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads), OMP_THREAD_LIMIT=str(threads),
               OMP_WAIT_POLICY="PASSIVE",
               PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")]))
    env.pop("FASTNN_NUM_THREADS", None)
    return env


def _run_worker(threads, tmp_path, repeats):
    out = tmp_path / f"arrays-{threads}.npz"
    proc = subprocess.run([sys.executable, "-c", WORKER, str(threads), str(out), str(repeats)], cwd=REPO,
                          env=_env(threads), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), dict(np.load(out))


@pytest.fixture(scope="module")
def worker_runs(tmp_path_factory):
    """The kernel worker at 1, 2 and 8 threads (50 repeats of each float32 Adam configuration)."""
    if set(COMPILED) != {"numba", "cython"}:
        pytest.skip("needs both compiled backends")
    tmp = tmp_path_factory.mktemp("threads")
    return {t: _run_worker(t, tmp, 50) for t in (1, 2, 8)}


def test_worker_really_ran_with_those_threads(worker_runs):
    for threads, (info, _) in worker_runs.items():
        assert info["numba_pool"] == threads
        assert info["numba_threads"] == threads
        assert info["layer"] != "workqueue" or threads == 1


def test_repeats_are_bit_identical_for_each_thread_count(worker_runs):
    for threads, (info, _) in worker_runs.items():
        for key, res in info["results"].items():
            for what in ("digests", "loss_digests"):
                assert len(res[what]) == 1, f"{threads} threads, {key}: {len(res[what])} different " \
                                            f"{what} over {res['runs']} runs"
        assert info["results"]["numba-float32-adam-clip-2"]["runs"] == 50


def test_parallel_kernels_equal_their_serial_run(worker_runs):
    """Same shard count: weights and optimizer state at 2 and 8 threads are bitwise the 1-thread ones."""
    serial = worker_runs[1][0]["results"]
    for threads in (2, 8):
        res = worker_runs[threads][0]["results"]
        assert res.keys() == serial.keys()
        differ = [k for k in res if res[k]["digests"] != serial[k]["digests"]]
        assert not differ, f"{threads} threads differ from 1 thread: {differ}"


def test_batch_losses_equal_their_serial_run(worker_runs):
    """The per-batch losses and correct counts too (see also test_numba_sharded_sums_do_not_depend_on_thread_count)."""
    serial = worker_runs[1][0]["results"]
    for threads in (2, 8):
        res = worker_runs[threads][0]["results"]
        differ = [k for k in res if res[k]["loss_digests"] != serial[k]["loss_digests"]]
        assert not differ, f"{threads} threads differ from 1 thread: {differ}"


@pytest.mark.skipif("numba" not in COMPILED, reason="needs numba")
def test_numba_sharded_sums_do_not_depend_on_thread_count():
    import numba
    from threadpoolctl import threadpool_limits

    from fastnn.kernels.codes import H_CLIP_NORM, H_LR, N_HYPER

    from kernels.helpers import dense_plan  # tests/ is on sys.path (pytest, _env)

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba's pool has one thread")
    kern = get_backend("numba")
    sizes = (400, 400, 10)  # 164,410 parameters: 11 chunks of the parallel update
    n_params = 164410
    n, bs, shards = 500, 128, 8  # ragged last batch
    differ = []
    before = numba.get_num_threads()
    try:
        for seed in range(4):
            rng = np.random.default_rng(seed)
            X = rng.standard_normal((n, sizes[0]))
            Y = rng.integers(0, 10, (n, 1)).astype(np.float64)
            P0 = rng.standard_normal(n_params) * 0.05
            hyper = np.zeros(N_HYPER)
            hyper[[H_LR, H_CLIP_NORM]] = [0.1, 1e-3]
            starts = np.arange(0, n, bs, dtype=np.int64)
            out = {}
            for threads in (1, 2):
                numba.set_num_threads(threads)
                plan = dense_plan(sizes, (1, 0), bs, shards, np.float64, opt=0, hyper=hyper, params=P0, n_slots=1)
                bl, bc = np.zeros(len(starts)), np.zeros(len(starts))
                with threadpool_limits(1, user_api="blas"):
                    kern.train_steps(plan, X, Y, np.arange(n, dtype=np.int64), starts, np.full(len(starts), 0.1), 0,
                                     bl, bc)
                out[threads] = (plan.params.copy(), bl)
            if not np.array_equal(out[1][0], out[2][0]):
                differ.append(f"seed {seed}: weights")
            if not np.array_equal(out[1][1], out[2][1]):
                differ.append(f"seed {seed}: batch losses")
    finally:
        numba.set_num_threads(before)
    assert not differ, differ


def test_sharded_equals_one_shard_within_tolerance(worker_runs):
    """More shards = another summation order: close to the 1-shard result, not necessarily bitwise."""
    arrays = worker_runs[2][1]
    for key, p in arrays.items():
        base = key.rsplit("-", 1)[0] + "-1"
        tol = 1e-4 if "float32" in key else 1e-10
        np.testing.assert_allclose(p, arrays[base], rtol=tol, atol=tol, err_msg=key)


def test_backends_agree_within_tolerance(worker_runs):
    arrays = worker_runs[2][1]
    for key, p in arrays.items():
        if key.startswith("numba-"):
            other = "cython-" + key[len("numba-"):]
            tol = 1e-4 if "float32" in key else 1e-10
            np.testing.assert_allclose(p, arrays[other], rtol=tol, atol=tol, err_msg=key)


# ---------------------------------------------------------------------------- concurrency (subprocess)

CONCURRENT = textwrap.dedent(r'''
    import json, sys
    from concurrent.futures import ThreadPoolExecutor
    import numpy as np
    import numba
    import fastnn as fnn
    from fastnn.kernels import get_backend
    from kernels.helpers import dense_plan  # tests/ is on sys.path (pytest, _env)

    iters = int(sys.argv[1])
    out = {"layer": None, "predict": {}, "train": {}}
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((n, 30)).astype(np.float32) for n in (1, 7, 64, 300, 5000)]
    for backend in ("numba", "cython"):
        net = fnn.Network([fnn.Dense(30, 64, "relu"), fnn.Dense(64, 32, "tanh"), fnn.Dense(32, 5)],
                          seed=0, backend=backend)
        expected = [(net.predict(x), net.predict_proba(x)) for x in inputs]

        def work(t):
            bad = 0
            for i in range(iters):
                k = (i + t) % len(inputs)
                lab, proba = net.predict(inputs[k]), net.predict_proba(inputs[k])
                bad += not (np.array_equal(lab, expected[k][0]) and np.array_equal(proba, expected[k][1]))
            return bad

        with ThreadPoolExecutor(4) as ex:
            out["predict"][backend] = sum(ex.map(work, range(4)))

    # parallel (prange) kernels launched from 4 Python threads at once, each on its own buffers
    n_params = 1669
    X = rng.standard_normal((256, 20)).astype(np.float32)
    Y = rng.integers(0, 5, (256, 1)).astype(np.float32)
    starts = np.arange(0, 256, 64, dtype=np.int64)
    hyper = np.zeros(10); hyper[[0, 1, 2, 3]] = [1e-3, 0.9, 0.999, 1e-8]
    for backend in ("numba", "cython"):
        kern = get_backend(backend)

        def train(t):
            p = np.random.default_rng(1).standard_normal(n_params).astype(np.float32)
            plan = dense_plan((20, 64, 5), (1, 0), 64, 2, np.float32, opt=1, hyper=hyper, params=p)
            bl, bc = np.zeros(4), np.zeros(4)
            for _ in range(iters // 10):
                kern.train_steps(plan, X, Y, np.arange(256, dtype=np.int64), starts, np.full(4, 1e-3), 0, bl, bc)
            return plan.params.tobytes()

        with ThreadPoolExecutor(4) as ex:
            results = list(ex.map(train, range(4)))
        out["train"][backend] = len(set(results))
    out["layer"] = numba.threading_layer()
    print(json.dumps(out))
''')


def _run_concurrent(iters, extra_env=None):
    env = _env(2)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-c", CONCURRENT, str(iters)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(set(COMPILED) != {"numba", "cython"}, reason="needs both compiled backends")
def test_predict_and_parallel_kernels_from_four_python_threads():
    proc = _run_concurrent(200)
    assert proc.returncode == 0, f"the process died (rc {proc.returncode}): {proc.stderr[-3000:]}"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["predict"] == {"numba": 0, "cython": 0}, out
    assert out["train"] == {"numba": 1, "cython": 1}, out  # 4 threads, same inputs: one result
    assert out["layer"] in ("omp", "tbb"), f"threading layer {out['layer']!r} is not thread-safe"


def test_predict_threads_in_process():
    """The same in this process (no abort expected), with a larger network and fewer iterations."""
    for backend in COMPILED:
        net = fnn.Network([fnn.Dense(50, 128, "relu"), fnn.Dense(128, 10)], seed=3, backend=backend)
        rng = np.random.default_rng(4)
        xs = [rng.standard_normal((n, 50)) for n in (3, 100, 4500)]
        want = [net.predict_proba(x) for x in xs]

        def work(t):
            return sum(not np.array_equal(net.predict_proba(xs[(i + t) % 3]), want[(i + t) % 3])
                       for i in range(30))

        with ThreadPoolExecutor(4) as ex:
            assert sum(ex.map(work, range(4))) == 0, backend


# ---------------------------------------------------------------------------- Trainer reproducibility

def _fit(backend, n_threads, parallel, seed=1):
    rng = np.random.default_rng(0)
    X = rng.random((1500, 64)).astype(np.float32)
    y = rng.integers(0, 10, 1500)
    net = fnn.Network([fnn.Dense(64, 256, "relu"), fnn.Dense(256, 10)], seed=0, backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.Adam(1e-3), batch_size=128, seed=seed, verbose=0, n_threads=n_threads,
                     parallel=parallel, clip_norm=1.0)
    tr.fit(X, y, epochs=2)
    return net.params.copy(), tr.last_plan


@pytest.mark.parametrize("backend", ["reference"] + COMPILED)
def test_same_seed_and_threads_give_identical_weights(backend):
    for n_threads, parallel in ((1, "auto"), (2, "shards"), (2, "blas")):
        a, plan = _fit(backend, n_threads, parallel)
        b, _ = _fit(backend, n_threads, parallel)
        np.testing.assert_array_equal(a, b, err_msg=f"{backend} {n_threads} threads {parallel}: {plan}")


@pytest.mark.parametrize("backend", COMPILED)
def test_what_the_thread_count_changes(backend):
    """BLAS threads do not change the bits; the shard count (= threads with parallel='shards') does."""
    one, plan1 = _fit(backend, 1, "blas")
    two_blas, plan2 = _fit(backend, 2, "blas")
    assert plan1["blas_threads"] == 1 and plan2["blas_threads"] == 2
    np.testing.assert_array_equal(one, two_blas)
    sharded, plan = _fit(backend, 2, "shards")
    assert plan["n_shards"] == 2
    np.testing.assert_allclose(sharded, one, rtol=1e-4, atol=1e-5)


def test_reference_backend_simulates_shards_deterministically():
    """The numpy plan driver runs the shard split serially: repeatable bits, serial values to rounding."""
    a, _ = _fit("reference", 1, "auto")
    b, plan = _fit("reference", 2, "shards")
    c, _ = _fit("reference", 2, "shards")
    assert plan["n_shards"] == 2
    np.testing.assert_array_equal(b, c)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", COMPILED)
def test_same_seed_same_bits_in_a_fresh_process(backend, tmp_path):
    """A second interpreter (fresh JIT/cache load, fresh thread pool) trains to the same bits."""
    here, _ = _fit(backend, 2, "shards")
    code = textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        from test_threads_determinism import _fit
        p, _ = _fit({backend!r}, 2, "shards")
        np.save({str(tmp_path / 'p.npy')!r}, p)
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(2), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), here)


@pytest.mark.parametrize("user_env,expected", [
    ({}, "None 2000"),                                   # default: a short spin, then sleep
    ({"OMP_WAIT_POLICY": "PASSIVE"}, "PASSIVE None"),    # a user's choice wins
    ({"GOMP_SPINCOUNT": "50"}, "None 50"),
])
def test_fastnn_defaults_to_a_short_openmp_spin(user_env, expected):
    env = {k: v for k, v in _env(2).items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(user_env)
    code = "import os, fastnn; print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == expected
