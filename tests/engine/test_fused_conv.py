"""Conv nets on the fused plan path: Conv2D / pooling / Flatten rows in every plan driver equal the
per-layer oracle, in one compiled call per chunk of steps (issue 11)."""
import numpy as np
import pytest

import fastnn as fnn
from fastnn import engine
from fastnn.kernels import available_backends, codes, get_backend, tiling
from fused_check import check_fused_grad_steps, fit_sgd  # tests/fused_check.py (tests/ is on sys.path: its conftest.py)

BACKENDS = available_backends()  # the reference plan driver included: it is the numpy oracle of the schedule
RNG = np.random.default_rng(0)
IMAGES = RNG.standard_normal((46, 10, 9, 2))
LABELS = RNG.integers(0, 3, 46)
TOL = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-4, atol=2e-5)}


def _layers():
    """Every image op and geometry branch: valid / same padding, stride 2, a 1x1 kernel (no im2col),
    overlapping and padded pooling windows, global pooling, a linear conv, Flatten, Dropout."""
    return [fnn.Conv2D(4, 3, activation="relu"), fnn.MaxPool2D(2, strides=1),
            fnn.Conv2D(5, (3, 2), strides=2, padding="same", activation="tanh"),
            fnn.AveragePooling2D(2, padding="same"), fnn.Conv2D(3, 1), fnn.MaxPool2D(2, padding="same"),
            fnn.Flatten(), fnn.Dense(6, "relu"), fnn.Dropout(0.2), fnn.Dense(3)]


def _train(backend, dtype, path="auto", n_threads=1, parallel="auto", layers=_layers, batch_size=16):
    net = fnn.Network(layers(), input_shape=(10, 9, 2), seed=3, dtype=dtype, backend=backend)
    tr = fnn.Trainer(net, optimizer=fnn.SGD(0.05, momentum=0.9, nesterov=True), batch_size=batch_size, seed=5,
                     verbose=0, n_threads=n_threads, parallel=parallel, path=path, clip_norm=5.0)
    hist = tr.fit(IMAGES.astype(dtype), LABELS, epochs=2)
    return net, tr, hist


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shards", [1, 2])
def test_fused_cnn_equals_the_per_layer_oracle(backend, dtype, shards):
    net, tr, hist = _train(backend, dtype, n_threads=shards, parallel="shards" if shards > 1 else "auto")
    assert tr.last_plan["path"] == "fused", tr.last_plan
    assert tr.last_plan["n_shards"] == shards
    assert "conv2d" in tr.plan.describe() and "maxpool2d" in tr.plan.describe()
    ref, _, ref_hist = _train("reference", dtype, path="per-layer")
    np.testing.assert_allclose(net.params, ref.params, **TOL[dtype])
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **TOL[dtype])
    np.testing.assert_allclose(hist["accuracy"], ref_hist["accuracy"], atol=1.5 / len(LABELS))


def test_a_cnn_takes_the_fused_path_with_shards_and_no_input_gradient_for_the_first_conv():
    net, tr, _ = _train(BACKENDS[-1], "float32", n_threads=2, batch_size=32)
    plan = tr.plan
    assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == 2, tr.last_plan
    convs = [q for q in range(len(plan.ops)) if plan.ops[q, codes.P_OP] == codes.OP_CONV2D]
    assert plan.ops[convs[0], codes.P_NEED_DX] == 0       # no col2im for the first layer
    assert all(plan.ops[q, codes.P_NEED_DX] == 1 for q in convs[1:])
    assert plan.ops[convs[2], codes.P_COLS] == -1          # the 1x1 kernel multiplies its input directly
    assert plan.wofs[codes.W_DCOLS] >= 0
    flat = [q for q, owner in enumerate(plan.layers_of_rows) if type(net.layers[owner]).__name__ == "Flatten"]
    assert flat == []                                      # Flatten is no op on NHWC rows


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_conv_gradients_pass_a_central_difference_check(backend):
    """float64: the fused driver's gradient (grad_steps) of conv, max and average pooling rows."""
    layers = [fnn.Conv2D(2, 2, activation="tanh"), fnn.MaxPool2D(2, strides=1), fnn.Conv2D(2, 2, padding="same"),
              fnn.AveragePooling2D(2), fnn.Flatten(), fnn.Dense(3)]
    net = fnn.Network(layers, input_shape=(5, 5, 1), seed=2, dtype="float64", backend=backend)
    plans = check_fused_grad_steps(net, RNG.standard_normal((6, 25)), LABELS, 3)
    assert all(plan.path == "fused" for plan in plans)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_plan_row_whose_geometry_does_not_fit_its_widths_is_refused(backend):
    net = fnn.Network(_layers(), input_shape=(10, 9, 2), seed=0, dtype="float64", backend=backend)
    opt = fnn.SGD(0.1)
    opt.build(net.n_params, net.dtype)
    loss = fnn.losses.get("cross_entropy")
    Y = loss.prepare_targets(LABELS, 3, net.dtype)
    args = (np.ascontiguousarray(IMAGES.reshape(46, -1)), Y, np.arange(46, dtype=np.int64), np.zeros(1, np.int64))
    for col, value in ((codes.P_H, 11), (codes.P_KH, 0), (codes.P_PH, 3), (codes.P_HO, 40)):
        plan = engine.build_plan(net, loss, 16, 1, 1).bind(net, opt, opt.hyper_vector())
        before = net.params.copy()
        plan.ops[0, col] = value
        with pytest.raises(ValueError, match="geometry"):
            get_backend(backend).train_steps(plan, *args, np.ones(1), 0, np.zeros(1), np.zeros(1))
        np.testing.assert_array_equal(net.params, before)


def _big_layers():
    """Feature maps large enough that the Cython driver runs every conv row in several tiles of
    images (csrc/plan_conv.pxi, CONV_TILE_BYTES), the last one short: the first conv (no input
    gradient), a padded 3x3 conv and two 1x1 convs (the columns are the input)."""
    return [fnn.Conv2D(16, 3, activation="relu"), fnn.Conv2D(8, 3, padding="same", activation="tanh"),
            fnn.Conv2D(128, 1, activation="relu"), fnn.Conv2D(4, 1), fnn.MaxPool2D(2), fnn.Flatten(),
            fnn.Dense(3)]


@pytest.mark.parametrize("backend", [b for b in ("cython", "numba") if b in BACKENDS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shards", [1, 2])
def test_compiled_conv_rows_in_several_tiles_equal_the_per_layer_oracle(backend, dtype, shards):
    """Both compiled drivers tile by fastnn.kernels.tiling's rule (the Cython one in C: the same counts)."""
    X = RNG.standard_normal((20, 16, 16, 16)).astype(dtype)
    y = RNG.integers(0, 3, 20)

    net, tr, hist = fit_sgd(_big_layers, X, y, backend=backend, path="fused", n_threads=shards, batch_size=9)
    assert tr.last_plan["path"] == "fused" and tr.last_plan["n_shards"] == shards, tr.last_plan
    m = int(tr.plan.wofs[codes.W_ROWS])
    rows = [row for row in tr.plan.ops if row[codes.P_OP] == codes.OP_CONV2D]
    size = np.dtype(dtype).itemsize
    tiles = [tiling.conv_tile_images(row[codes.P_HO] * row[codes.P_WO], row[codes.P_KH] * row[codes.P_KW] * row[codes.P_C],
                                     row[codes.P_N_OUT] // (row[codes.P_HO] * row[codes.P_WO]), m, size) for row in rows]
    if backend == "cython":
        from fastnn._ext import _kernels
        assert tiles == [_kernels.conv_tile_images(row, m, size) for row in rows]
    assert len(tiles) == 4 and all(t < m for t in tiles), (tiles, m)
    if dtype == "float32":
        assert all(t > 1 and m % t for t in tiles), (tiles, m)  # several images per tile, a short last one
    ref, _, ref_hist = fit_sgd(_big_layers, X, y, backend="reference", path="per-layer", batch_size=9)
    np.testing.assert_allclose(net.params, ref.params, **TOL[dtype])
    np.testing.assert_allclose(hist["loss"], ref_hist["loss"], **TOL[dtype])
