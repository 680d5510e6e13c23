"""show_config, the thread knob, backend selection."""
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fnn


def test_show_config_lists_compiled_backends(capsys):
    info = fnn.show_config()
    out = capsys.readouterr().out
    assert info["backends"]["numba"] == "available"
    assert info["backends"]["cython"] == "available"
    assert "numba" in out and "cython" in out and "BLAS" in out
    assert info["num_threads"] >= 1


def test_set_num_threads_validates_and_applies():
    old = fnn.get_num_threads()
    try:
        assert fnn.set_num_threads(1) == 1
        assert fnn.get_num_threads() == 1
        net = fnn.Network([fnn.Dense(4, 64, "relu"), fnn.Dense(64, 2)], seed=0)
        trainer = fnn.Trainer(net, batch_size=64, verbose=0)
        trainer.fit(np.random.default_rng(0).standard_normal((128, 4)), np.arange(128) % 2)
        assert trainer.last_plan["n_shards"] == 1 and trainer.last_plan["blas_threads"] == 1
        with pytest.raises(ValueError):
            fnn.set_num_threads(0)
        with pytest.raises(ValueError):
            fnn.set_num_threads("two")
    finally:
        fnn.set_num_threads(old)


def test_env_overrides_in_a_fresh_process():
    code = ("import fastnn as f; n = f.Network([f.Dense(2, 2)]); "
            "print(f.get_num_threads(), f.get_backend().NAME, n.dtype)")
    env = {"FASTNN_NUM_THREADS": "1", "FASTNN_BACKEND": "reference", "FASTNN_DTYPE": "float64"}
    import os

    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["1", "reference", "float64"]


def test_blas_single_thread_restores_the_limit_when_uses_overlap():
    """Two overlapping uses (predict from two Python threads) that leave in the order they came:
    the BLAS limit is one while either is inside and what it was before once both have left."""
    from threadpoolctl import threadpool_info

    from fastnn._config import blas_single_thread, thread_limits

    def blas_threads():
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    with thread_limits(2):
        before = blas_threads()
        a, b = blas_single_thread(), blas_single_thread()
        a.__enter__()
        b.__enter__()
        assert blas_threads() == {1}
        a.__exit__(None, None, None)  # the first leaves while the second is still inside
        assert blas_threads() == {1}
        b.__exit__(None, None, None)
        assert blas_threads() == before
