"""A pickled Network comes back with its layers' parameters as views of the flat buffers again."""
import pickle

import numpy as np

import fastnn as fnn


def test_unpickled_network_trains_what_it_predicts_with():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((64, 5)), rng.integers(0, 3, 64)
    net = fnn.Network([fnn.Dense(5, 8, "relu"), fnn.BatchNorm(), fnn.Dense(8, 3)], seed=0)
    clone = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(clone.predict_proba(X), net.predict_proba(X))
    assert np.shares_memory(clone.layers[0].params["W"], clone.params)
    assert np.shares_memory(clone.layers[1].buffers["running_mean"], clone.buffers)
    for n in (net, clone):
        fnn.Trainer(n, optimizer=fnn.Adam(1e-2), batch_size=16, verbose=0, seed=1).fit(X, y, epochs=3)
    np.testing.assert_allclose(clone.predict_proba(X), net.predict_proba(X), rtol=1e-6)
    assert not np.allclose(clone.params, pickle.loads(pickle.dumps(clone)).params * 0)
