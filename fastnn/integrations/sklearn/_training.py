"""Training pieces of the estimators: the sample-weighted loss, sklearn's end-of-epoch logic, L-BFGS."""
import numpy as np
from scipy.special import expit, xlogy
from sklearn.utils import shuffle

from ...callbacks import Callback
from ...layers import BatchNorm, Dense, Dropout
from ...losses import GenericLoss

__all__ = ["WeightedLoss", "EpochControl", "SklearnShuffle", "fit_lbfgs"]


class SklearnShuffle:
    """The trainer's epoch orders, drawn as sklearn's MLP draws them (``Trainer.rng`` stand-in).

    sklearn reshuffles its running index array every epoch,
    ``sample_idx = shuffle(sample_idx, random_state=rs)``, from the same
    RandomState that drew the initial weights (and the early-stopping split):
    with these orders a fit follows sklearn's batch for batch.
    """

    def __init__(self, random_state, n):
        self.random_state = random_state
        self.idx = np.arange(n)
        # Trainer.state_dict (checkpoint callbacks) records a bit generator: a fixed one stands in (drawing
        # its seed from random_state would shift sklearn's stream)
        self.bit_generator = np.random.PCG64(0)

    def permutation(self, n):
        if n != self.idx.size:
            raise ValueError(f"SklearnShuffle was made for {self.idx.size} samples, asked for {n}")
        self.idx = shuffle(self.idx, random_state=self.random_state)
        return self.idx.copy()


class WeightedLoss(GenericLoss):
    """BCE-from-logits, MSE or Poisson (log link) with per-sample weights as the target's last column.

    ``poisson`` is sklearn's half Poisson deviance of ``exp(z)``:
    ``t*log(t) - t*z - t + exp(z)``, gradient ``exp(z) - t`` (fastnn has no Poisson
    loss of its own, so ``MLPRegressor(loss='poisson')`` always comes here).

    Runs on the per-layer path (numpy); ``scale`` and the per-row sum follow
    :meth:`fastnn.losses.GenericLoss.forward_backward`. Per-row losses are means
    over outputs, as the unweighted fastnn losses.
    """

    def __init__(self, kind):
        super().__init__(f"weighted_{kind}")
        self.kind = kind
        self.is_classification = kind == "bce"

    def prepare_targets(self, y, n_outputs, dtype, name="y"):
        arr = np.asarray(y)
        if arr.ndim != 2 or arr.shape[1] != n_outputs + 1:
            raise ValueError(f"{name} must have shape (n, {n_outputs + 1}): targets and a weight column")
        return np.ascontiguousarray(arr, dtype=dtype)

    def forward_backward(self, out, target, scale, dout, backend=None):
        k = out.shape[1]
        z = out.astype(np.float64)
        t = target[:, :k].astype(np.float64)
        w = target[:, k:].astype(np.float64)
        if self.kind == "bce":
            per = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
            grad = expit(z) - t
        elif self.kind == "poisson":
            with np.errstate(over="ignore"):  # an overflow is a NaN/Inf loss: the trainer's guard reports it
                mu = np.exp(z)
            per = xlogy(t, t) - t * z - t + mu
            grad = mu - t
        else:
            diff = z - t
            per = diff * diff
            grad = 2.0 * diff
        dout[...] = grad * (w * (scale / k))
        return float((per * w).sum() / k)

    def count_correct(self, out, target, backend=None):
        if self.kind != "bce":
            return 0
        k = out.shape[1]
        return int(((out > 0) == (target[:, :k] > 0.5)).all(axis=1).sum())


class EpochControl(Callback):
    """sklearn's end-of-epoch logic: loss curve, tol/n_iter_no_change, early stopping, lr schedules."""

    every_batch = False

    def __init__(self, est, n_samples, val, incremental, lr_scale):
        self.est = est
        self.n_samples = n_samples
        self.val = val
        self.incremental = incremental
        self.lr_scale = lr_scale

    def on_epoch_begin(self, epoch, logs=None):
        est = self.est
        # sklearn reports its squared loss as 0.5 * mean over the k outputs, but its L2 term on the
        # training scale (k/2): the penalty part of fastnn's loss is rescaled separately. It is taken at the
        # epoch's first weights (exact for one batch per epoch, close otherwise).
        self._penalty = 0.0
        if est._loss_kind == "mse" and est.n_outputs_ > 1:
            self._penalty = sum(layer.penalty() for layer in est.network_.layers if isinstance(layer, Dense))

    def on_epoch_end(self, epoch, logs=None):
        est, opt = self.est, self.trainer.optimizer
        if est._loss_kind == "mse":  # (poisson, like bce, sums over outputs: the plain scale below)
            loss = 0.5 * float(logs["loss"]) + 0.5 * (est.n_outputs_ - 1) * self._penalty
        else:
            loss = float(logs["loss"]) * est._loss_scale
        if not np.isfinite(loss):
            return  # the trainer's guard raises NonFiniteError
        est.n_iter_ += 1
        est.loss_ = loss
        est.t_ += self.n_samples
        est.loss_curve_.append(loss)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {loss:.8f}")
        if self.val is not None:
            X_val, y_val, w_val = self.val
            score = est.score(X_val, y_val, sample_weight=w_val)
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            est._no_improvement_count = (est._no_improvement_count + 1
                                         if score < est.best_validation_score_ + est.tol else 0)
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                net = est.network_
                est._best_state = (net.params.copy(), net.buffers.copy())
        else:
            est._no_improvement_count = (est._no_improvement_count + 1
                                         if loss > est.best_loss_ - est.tol else 0)
            if loss < est.best_loss_:
                est.best_loss_ = loss
        if est.solver == "sgd" and est.learning_rate == "invscaling":
            est._lr = est.learning_rate_init / (est.t_ ** est.power_t)
            opt.lr = est._lr * self.lr_scale
        if est._no_improvement_count > est.n_iter_no_change:
            if est.solver == "sgd" and est.learning_rate == "adaptive" and est._lr > 1e-6:
                est._lr /= 5.0
                opt.lr = est._lr * self.lr_scale
                est._no_improvement_count = 0
                if est.verbose:
                    print(f"Setting learning rate to {est._lr:f}")
            else:
                if est.verbose:
                    what = "Validation score" if self.val is not None else "Training loss"
                    print(f"{what} did not improve more than tol={est.tol:f} for "
                          f"{est.n_iter_no_change} consecutive epochs. Stopping.")
                est._stopped = True
                self.trainer.stop_training = True


def fit_lbfgs(est, X, Y, loss, weight_sum):
    """sklearn's L-BFGS: scipy's L-BFGS-B on the full-batch loss, gradients from fastnn's layers.

    The objective is sklearn's: ``s * data_loss + 0.5 * alpha * ||W||^2 / sum(sample_weight)``; the
    data loss and its gradient come from the layers' forward/backward (fastnn's per-layer path).
    """
    from scipy.optimize import minimize
    from sklearn.utils.optimize import _check_optimize_result

    from ...kernels import get_backend

    net = est.network_
    if any(isinstance(layer, (Dropout, BatchNorm)) for layer in net.layers):
        raise ValueError("solver='lbfgs' needs a deterministic full-batch loss: use it without dropout and "
                         "batch_norm (or choose solver='adam' or 'sgd')")
    kern = get_backend(net.backend)
    Xc = np.ascontiguousarray(X, dtype=net.dtype)
    Yc = loss.prepare_targets(Y, net.n_outputs, net.dtype)
    n = Xc.shape[0]
    s = est._loss_scale
    dense = [layer for layer in net.layers if isinstance(layer, Dense)] if est.network is None else []
    for layer in dense:
        layer.l2 = 0.0  # the L2 term is added here, in float64
    dout = np.empty((n, net.n_outputs), net.dtype)
    coef = est.alpha / weight_sum
    is_weight = np.zeros(net.params.size, bool)  # the flat-buffer entries of the Dense weights (L2 on them)
    for i, name, off, shape in net._slots:
        if name == "W" and net.layers[i] in dense:
            is_weight[off:off + int(np.prod(shape))] = True
    last = {}

    def loss_grad(theta):
        net.params[...] = theta
        A = Xc
        for layer in net.layers:
            A = layer.forward(A, training=True, backend=net.backend)
        if loss.code is None:
            data = loss.forward_backward(A, Yc, 1.0 / n, dout, backend=net.backend) / n
        else:
            data = kern.loss_forward_backward(loss.code, A, Yc, 1.0 / n, dout) / n
        dA = dout
        for i in range(len(net.layers) - 1, -1, -1):
            dA = net.layers[i].backward(dA, backend=net.backend, need_dX=i > 0)
        grad = net.grads.astype(np.float64) * s
        W = theta[is_weight]
        grad[is_weight] += coef * W
        penalty = 0.5 * coef * float(np.dot(W, W))
        last["data"], last["penalty"] = data, penalty
        return s * data + penalty, grad

    res = minimize(loss_grad, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
                   options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol})
    est.n_iter_ = _check_optimize_result("lbfgs", res, est.max_iter)
    loss_grad(res.x)  # leave the network at the optimum (the last evaluation may be a line-search probe)
    est.loss_ = (0.5 * last["data"] if est._loss_kind == "mse" else s * last["data"]) + last["penalty"]
