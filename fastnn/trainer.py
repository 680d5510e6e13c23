"""Trainer: the fit loop; the engine (:mod:`fastnn.engine`) decides and runs the path of every step."""
import contextlib
import time
import warnings

import numpy as np

from . import losses as _losses
from . import optimizers as _optimizers
from ._config import apply_numba_threads, get_num_threads
from .kernels.threads import blas_limits
from ._validation import (Boolean, Custom, Integer, OneOf, Param, Real, check_batch_size,
                          check_positive_int, check_seed)
from .callbacks import CallbackList, EpochLogger, ProgressBar
from . import engine as _engine
from .errors import FastnnWarning
from .kernels import get_backend
from .layers import Dense, Flatten

_CHUNK_BATCHES = 128   # batches per compiled call when nothing needs every batch


class History:
    """Per-epoch training record returned by :meth:`Trainer.fit`.

    ``history.history`` maps a metric name (``loss``, ``accuracy``,
    ``val_loss``, ``val_accuracy``, ``epoch_time``, ``samples_per_s``, ``lr``,
    and any extra metrics) to a list with one value per epoch; ``history[name]``
    is a shortcut. ``history.profile`` is the :class:`~fastnn.profiler.ProfileReport` of
    ``fit(profile=True)``, else None.
    """

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.profile = None  # the ProfileReport of fit(profile=True)

    def append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"

    def plot(self, path=None, **kwargs):
        """Plot training curves (needs matplotlib: ``pip install fastnn[plot]``)."""
        from .plotting import plot_history

        return plot_history(self, path=path, **kwargs)


def _check_loss_activation(loss, network):
    last = network.layers[-1]
    act = getattr(last, "activation", "linear")
    if loss.fused_activation == "softmax" and act not in ("linear", "softmax"):
        raise ValueError(f"loss {loss.name!r} takes logits: the last layer must be linear (or softmax), "
                         f"not {act!r}")
    if loss.fused_activation == "sigmoid" and act not in ("linear", "sigmoid"):
        raise ValueError(f"loss {loss.name!r} takes logits: the last layer must be linear "
                         f"(or sigmoid), not {act!r}")


class _Clip(Real):
    """A positive finite number, or None (stored as 0.0: no clipping)."""

    def __init__(self):
        super().__init__(0, lo_open=True, optional=True)

    def check(self, value, name):
        value = super().check(value, name)
        return 0.0 if value is None else value

    def describe(self):
        return "a positive finite number or None"


class _Verbosity(Integer):
    """0, 1 or 2 (a bool counts as 0/1)."""

    def __init__(self):
        super().__init__(0, 2)

    def _ok(self, value):
        return isinstance(value, (bool, np.bool_)) or super()._ok(value)

    def invalid_examples(self):
        return [v for v in super().invalid_examples() if v is not True]


class Trainer:
    """Trains a :class:`~fastnn.Network` with mini-batch gradient descent.

    Parameters
    ----------
    network : Network
    loss : str or Loss, default 'cross_entropy'
        ``'cross_entropy'`` (logits + integer labels or one-hot), ``'binary_cross_entropy'``, ``'mse'``.
    optimizer : str or Optimizer, default 'adam'
    batch_size : int, default 32
    clip_norm : float, optional
        Rescale the whole gradient to this global L2 norm when larger.
    clip_value : float, optional
        Clip each gradient element to [-clip_value, clip_value].
    callbacks : list of Callback, optional
    seed : int, optional
        Seeds the shuffling of each epoch.
    n_threads : int, optional
        Threads for this trainer; default :func:`fastnn.get_num_threads`.
    parallel : {'auto', 'shards', 'columns', 'blas', 'probe'}, default 'auto'
        How mini-batches use several cores: ``'shards'`` splits each batch into
        one row shard per thread (single-threaded BLAS each, gradients summed in
        a fixed order); ``'columns'`` (Cython backend, networks of Dense layers) splits
        each layer's GEMMs by output columns over the threads, with one gradient and no
        reduction; ``'blas'`` keeps the batch whole and lets BLAS thread each
        GEMM; ``'auto'`` follows the measured rule of :func:`fastnn.engine.split.choose_split`:
        columns for wide networks (at least 2**20 parameters), shards when every shard gets
        at least 64 rows and enough arithmetic (rows x parameters >= 2**20), columns for
        thinner shards of Dense networks with batch x parameters >= 2**22, shards of 32+
        rows for the others, and otherwise one thread (faster for small batches and tiny
        networks on a 2-core machine). ``'probe'`` times every candidate on a few real steps
        at the first fused fit of a shape and takes the fastest (cached per shape, no trace
        left in the weights; :mod:`fastnn.engine.split_probe`): for a busy machine or shapes
        the rule misjudges. Networks on the per-layer path follow
        :func:`fastnn.engine.sharded.choose_layer_shards` instead (``'probe'`` reads as
        ``'auto'`` there): row shards for conv, recurrent and attention networks, else the
        kernels' own threads. ``trainer.last_plan['reason']`` says which was taken and why.
    check_finite : bool, default True
        After every compiled chunk, check the batch losses; on NaN/Inf restore
        the weights from before the chunk and raise :class:`~fastnn.errors.NonFiniteError`.
    backend : str, optional
        Kernel backend; default: the network's.
    verbose : int, default 1
        0 silent, 1 progress bar + one line per epoch, 2 one line per epoch.
    metrics : list of str or callable, optional
        Extra metrics computed by :meth:`evaluate` (and on validation data).
    path : {'auto', 'fused', 'per-layer'}, default 'auto'
        ``'auto'`` runs every step in one compiled plan driver when every layer and the
        loss have plan rows (all built-in ones do), else layer by layer; ``'fused'``
        raises ValueError, with the reason, when that is not possible; ``'per-layer'``
        always calls each layer's forward/backward (the oracle; slower).
        ``trainer.last_plan`` reports the path taken and why.
    """

    # Checked on every assignment: trainer.batch_size = -1 fails here, not inside the next fit.
    batch_size = Param(Integer(1))
    clip_norm = Param(_Clip())
    clip_value = Param(_Clip())
    n_threads = Param(Integer(1, optional=True))
    parallel = Param(OneOf(("auto", "shards", "columns", "blas", "probe")))
    path = Param(OneOf(("auto", "fused", "per-layer")))
    check_finite = Param(Boolean())
    verbose = Param(_Verbosity())
    epoch = Param(Integer(0))
    optimizer = Param(Custom(_optimizers.get, "an Optimizer or an optimizer name", invalid=["lbfgs", 3, None]))
    loss = Param(Custom(_losses.get, "a Loss or a loss name", invalid=["hinge", 3, None]))
    backend = Param(Custom(lambda name: (get_backend(name), name)[1], "a backend name or None",
                           invalid=["cuda", 3, ""]))

    def __init__(self, network, loss="cross_entropy", optimizer="adam", batch_size=32, *,
                 clip_norm=None, clip_value=None, callbacks=None, seed=None, n_threads=None,
                 parallel="auto", check_finite=True, backend=None, verbose=1, metrics=None, path="auto"):
        self.network = network
        self.loss = loss
        _check_loss_activation(self.loss, network)
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.clip_norm = clip_norm
        self.clip_value = clip_value
        self.callbacks = list(callbacks or [])
        self.seed = check_seed(seed, "Trainer seed")
        # Without a seed, shuffling draws from the network's generator: Network(seed=0) alone makes
        # fit reproducible, as users expect (an explicit seed still wins).
        self.rng = np.random.default_rng(seed if seed is not None else network.rng.integers(2 ** 63))
        self.n_threads = n_threads
        self.parallel = parallel
        self.path = path
        self.check_finite = check_finite
        self.backend = backend if backend is not None else network.backend
        self.verbose = verbose
        self.metrics = list(metrics or [])
        self.epoch = 0           # epochs completed so far (continues across fit calls)
        self.stop_training = False
        self.last_plan = None    # description of the last fit's execution plan (for tests/diagnostics)
        self.fit_data = None     # (X, Y) as prepared, during fit only (for callbacks)
        self.validation_data = None

    # ------------------------------------------------------------------ validation
    def _prepare(self, X, y, name="X"):
        net = self.network
        Xc = net._check_input(X, name)
        raw = np.asarray(X)
        first = net.layers[0]
        if getattr(first, "takes_token_ids", False):  # an Embedding first: ids are integers by design
            first.check_ids(Xc, name)
        top = raw.max() if raw.dtype.kind in "iu" and name == "X" and not getattr(first, "takes_token_ids", False) \
            else 0  # Xc is not empty: checked above
        if top > 1:
            warnings.warn(f"{name} holds unscaled integers up to {top} (dtype {raw.dtype}): such inputs train much "
                          f"worse and diverge easily; scale them first, e.g. {name} / {255 if top <= 255 else top}.0 "
                          f"for pixels, or fastnn.data.Standardizer", FastnnWarning, stacklevel=3)
        y_name = "y" if name == "X" else name.replace("X", "y")
        if y is None:
            raise ValueError(f"{y_name} is required")
        if np.ndim(y) == 0 or len(y) != Xc.shape[0]:
            raise ValueError(f"len({name}) = {Xc.shape[0]} but len({y_name}) = {np.size(y) if np.ndim(y) else 0}; "
                             f"every sample needs a target")
        Y = self.loss.prepare_targets(y, net.n_outputs, net.dtype, name=y_name)
        return Xc, Y

    def _columns_ok(self, kern):
        """Whether the column-split driver can run this network (Cython, Dense layers, no hidden softmax)."""
        return kern.NAME == "cython" and all(type(layer) in (Dense, Flatten) for layer in self.network.layers) \
            and all(getattr(layer, "activation", None) != "softmax" for layer in self.network.layers[:-1])

    def _split(self, kern, n_threads, batch_size):
        """The :class:`~fastnn.engine.split.Split` of this fit (the rule is in fastnn.engine.split)."""
        if self.parallel == "columns" and kern.NAME != "cython":
            raise ValueError(f"parallel='columns' needs the cython backend, not {kern.NAME!r}")
        dense = self._columns_ok(kern)
        if self.parallel == "columns" and not dense and n_threads > 1:
            raise ValueError("parallel='columns' is not possible: the column split runs Dense layers "
                             "(no hidden softmax) only")
        compute_bound = any(getattr(layer, "compute_bound", False) for layer in self.network.layers)
        return _engine.choose_split(self.parallel, n_threads, batch_size, self.network.n_params, dense,
                                    self.network.dtype.itemsize, compute_bound=compute_bound)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, epochs=1, batch_size=None, *, validation_data=None, shuffle=True, seed=None,
            callbacks=None, verbose=None, resume_from=None, augment=None, samples_per_epoch=None, profile=False):
        """Train for ``epochs`` more epochs and return the :class:`History`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_inputs)
        y : array-like
            Integer labels or one-hot rows (cross-entropy), targets in [0, 1]
            (binary cross-entropy), or values (mse).
        epochs : int, default 1
        batch_size : int, optional
            Overrides the trainer's batch size for this call.
        validation_data : tuple (X_val, y_val), optional
            Evaluated after every epoch (``val_loss``, ``val_accuracy``).
        shuffle : bool, default True
        seed : int, optional
            Reseeds the shuffling for this call.
        callbacks : list of Callback, optional
            Added to the trainer's callbacks for this call.
        verbose : int, optional
            Overrides the trainer's verbosity for this call.
        resume_from : str or path, optional
            A training checkpoint (see :mod:`fastnn.checkpoint`): weights, optimizer
            state, epoch counter and shuffling RNG are restored first, and ``epochs``
            then means the *total* number of epochs, as in an uninterrupted run.
        samples_per_epoch : int, optional
            Train each epoch on a fresh random subset of this many samples (drawn without
            replacement from a new permutation), as the guides do for large sets.
        augment : callable, optional
            ``augment(X, out=buffer)`` run at the start of every epoch to fill a fresh augmented
            copy of ``X`` (e.g. :class:`fastnn.data.augment.Augmenter`); labels are unchanged.
        profile : bool, default False
            After training, profile the trained step with :func:`fastnn.profile` (same data,
            batch size, threads and plan) and attach the :class:`~fastnn.profiler.ProfileReport`
            as ``history.profile`` (None when False). Profiling runs extra, untimed-by-the-history
            steps (a warm-up and three fits of up to 64 steps, then a phase-by-phase replay,
            typically well under a second for an MLP) and restores the weights, optimizer state,
            shuffling generator and epoch counter afterwards: the trained result is the same
            as without it.

        Raises
        ------
        ValueError, TypeError
            On bad input, before anything changes.
        NonFiniteError
            When a batch loss becomes NaN/Inf (``check_finite``); the weights are
            restored to their last finite state.
        """
        net = self.network
        _check_loss_activation(self.loss, net)  # trainer.loss may have been reassigned since __init__
        Xc, Y = self._prepare(X, y)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (X_val, y_val)")
            val = self._prepare(validation_data[0], validation_data[1], name="X_val")
        epochs = check_positive_int(epochs, "epochs")
        batch_size = self.batch_size if batch_size is None else check_batch_size(batch_size)
        verbose = self.verbose if verbose is None else type(self).verbose.constraint.check(verbose, "fit verbose")
        seed = check_seed(seed, "fit seed")
        profile = Boolean().check(profile, "fit profile")
        old_rng = self.rng
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        if resume_from is not None:
            from .checkpoint import load_checkpoint

            try:
                load_checkpoint(resume_from, trainer=self)  # all or nothing
            except BaseException:
                self.rng = old_rng  # nor does the reseeding above stay
                raise
            epochs = max(0, epochs - self.epoch)
        n = Xc.shape[0]
        if samples_per_epoch is not None:
            samples_per_epoch = check_positive_int(samples_per_epoch, "samples_per_epoch")
            if not 0 < samples_per_epoch <= n:
                raise ValueError(f"samples_per_epoch must be in [1, {n}] (the number of samples), "
                                 f"not {samples_per_epoch}")
        n_epoch = samples_per_epoch or n
        batch_size = min(batch_size, n_epoch)

        all_callbacks = list(self.callbacks) + list(callbacks or [])
        if verbose == 1:
            all_callbacks = [ProgressBar()] + all_callbacks
        if verbose >= 1:
            all_callbacks.append(EpochLogger())
        cbs = CallbackList(all_callbacks, self)

        kern = get_backend(self.backend)
        n_threads = self.n_threads or get_num_threads()
        split = self._split(kern, n_threads, batch_size)
        if self.parallel == "probe" and n_threads > 1 and self.path != "per-layer":
            self.optimizer.build(net.n_params, net.dtype)
            split = _engine.probe_split(kern, net, self.loss, self.optimizer, Xc, Y, batch_size, n_threads,
                                        self._columns_ok(kern), self.optimizer.hyper_vector(
                                            self.clip_norm, self.clip_value)) or split
        if self.path == "per-layer":
            plan = _engine.Plan(path="per-layer", reason="asked for with Trainer(path='per-layer')")
        else:
            plan = _engine.build_plan(net, self.loss, batch_size, split.threads if split.kind == "shards" else 1,
                                      Y.shape[1], backend_has_driver=hasattr(kern, "train_steps"))
            if plan.path == "fused":
                plan.col_threads = split.threads if split.kind == "columns" else 1
                plan.reason = split.reason
        if self.path == "fused" and plan.path != "fused":
            raise ValueError(f"the fused path is not possible: {plan.reason}")
        n_shards = plan.n_shards if plan.path == "fused" else 1
        col_threads = plan.col_threads if plan.path == "fused" else 1
        # BLAS threads only for 'blas': for tiny networks threaded BLAS costs more in wake-ups than it
        # gives (measured 20x slower), and inside shards or columns the two thread pools fight.
        if plan.path == "fused":
            blas_threads = split.threads if split.kind == "blas" else 1
        else:
            blas_threads = 1 if self.parallel in ("auto", "columns", "probe") else n_threads
        # The per-layer path (issues 11, 12): row shards, one thread each, one-thread BLAS, or the
        # kernels' own threads; fastnn.engine.sharded has the measured rule. parallel='blas' keeps threaded BLAS.
        layer_shards = 1
        if plan.path != "fused" and self.path == "auto":
            layer_shards, why = _engine.choose_layer_shards(net, self.loss, kern.NAME, n_threads, batch_size,
                                                            "auto" if self.parallel == "probe" else self.parallel)
            plan.reason = f"{plan.reason}; {why}"
            if layer_shards > 1:
                n_shards, blas_threads = layer_shards, 1
        self.optimizer.build(net.n_params, net.dtype)
        net.task = "classification" if self.loss.is_classification else "regression"
        steps_per_call = 1 if cbs.needs_every_batch else _CHUNK_BATCHES
        self.plan = plan
        self.last_plan = {"path": plan.path, "backend": kern.NAME, "n_shards": n_shards, "col_threads": col_threads,
                          "blas_threads": blas_threads, "steps_per_call": steps_per_call,
                          "reason": plan.reason}
        self.epochs = self.epoch + epochs
        self.n_samples_epoch = n_epoch
        self.stop_training = False
        history = History()

        if augment is not None and not callable(augment):
            raise TypeError("augment must be callable as augment(X, out=buffer)")
        X_run = Xc if augment is None else np.empty_like(Xc)  # refilled every epoch
        self.batch_size_in_use = batch_size
        hyper = self.optimizer.hyper_vector(self.clip_norm, self.clip_value)
        run = self._make_runner(kern, plan, X_run, Y, batch_size, hyper, layer_shards)
        run_batches = run if not self.check_finite else _engine.guarded(
            run, net, self.optimizer,
            lambda start: f"epoch {self.epoch + 1}, batch {start // batch_size + 1}")

        # Read-only views for callbacks (fastnn.callbacks.Diagnostics): the prepared data of this fit.
        self.fit_data = (Xc, Y)
        self.validation_data = val
        # The per-layer path's parallel kernels (recurrent, attention) take the thread count; with threaded
        # BLAS (parallel='blas') they run one thread and BLAS splits each GEMM instead.
        kernel_threads = n_threads if blas_threads == 1 else 1
        if plan.path == "fused" or n_shards > 1 or layer_shards > 1:
            kernel_threads = None
        with blas_limits(blas_threads), \
                (_engine.layer_threads(kern, kernel_threads) if kernel_threads else contextlib.nullcontext()):
            if n_shards > 1:
                apply_numba_threads(n_shards)
            cbs.on_train_begin({})
            for _ in range(epochs):
                epoch = self.epoch
                cbs.on_epoch_begin(epoch, {})
                if augment is not None:
                    t_aug = time.perf_counter()
                    augment(Xc, out=X_run)
                    t_aug = time.perf_counter() - t_aug
                    if X_run.shape != Xc.shape or not np.isfinite(X_run).all():
                        raise ValueError("augment produced a wrong shape or NaN/Inf values")
                t0 = time.perf_counter()
                perm = self.rng.permutation(n) if (shuffle or n_epoch < n) else np.arange(n)
                perm = perm[:n_epoch]
                starts = np.arange(0, n_epoch, batch_size, dtype=np.int64)
                sizes = np.minimum(batch_size, n_epoch - starts)
                batch_loss = np.zeros(len(starts))
                batch_correct = np.zeros(len(starts))
                lr_first = self.optimizer.current_lr
                for c0 in range(0, len(starts), steps_per_call):
                    c1 = min(c0 + steps_per_call, len(starts))
                    cbs.on_batch_begin(c0, {})
                    run_batches(perm, starts[c0:c1], batch_loss[c0:c1], batch_correct[c0:c1])
                    m = int(sizes[c0:c1].sum())
                    logs = {"loss": float((batch_loss[c0:c1] * sizes[c0:c1]).sum() / m), "samples": m,
                            "batches": c1 - c0}
                    if self.loss.is_classification:
                        logs["accuracy"] = float(batch_correct[c0:c1].sum() / m)
                    cbs.on_batch_end(c1 - 1, logs)
                train_time = time.perf_counter() - t0
                logs = {"loss": float((batch_loss * sizes).sum() / n_epoch)}
                if self.loss.is_classification:
                    logs["accuracy"] = float(batch_correct.sum() / n_epoch)
                if val is not None:
                    for key, value in self._evaluate_prepared(*val).items():
                        logs["val_" + key] = value
                logs["lr"] = lr_first
                logs["epoch_time"] = train_time
                logs["samples_per_s"] = n_epoch / train_time if train_time > 0 else float("inf")
                if augment is not None:
                    logs["augment_time"] = t_aug
                self.epoch += 1
                history.append(epoch, logs)
                cbs.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            cbs.on_train_end({})
        self.fit_data = self.validation_data = None  # do not keep the data alive after fit
        if profile:
            from .profiler import profile as _profile  # the toolkit, lazily (it imports the trainer)

            history.profile = _profile(self, X, y, batch_size=batch_size)
        self.history = history
        return history

    def _make_runner(self, kern, plan, X, Y, batch_size, hyper, layer_shards=1):
        """The runner of one fit, ``run(perm, starts, batch_loss, batch_correct)`` (see :mod:`fastnn.engine.runners`).

        The one hook a trainer that runs the steps elsewhere overrides (``fastnn.distributed.RayTrainer``):
        everything around it (validation, callbacks, history, the non-finite guard, checkpoints) is shared.
        """
        net = self.network
        if plan.path == "fused":
            return _engine.fused_runner(kern, plan, net, self.loss, self.optimizer, X, Y, hyper)
        if layer_shards > 1:  # the per-layer path in row shards: one per thread
            return _engine.sharded_runner(kern, self.backend, net, self.loss, self.optimizer, X, Y,
                                          batch_size, hyper, self.clip_norm, self.clip_value, layer_shards)
        return _engine.layerwise_runner(kern, self.backend, net, self.loss, self.optimizer, X, Y,
                                        batch_size, hyper, self.clip_norm, self.clip_value)

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """Training state besides the weights: epoch counter, shuffling RNG state, optimizer state."""
        return {"epoch": int(self.epoch), "rng_state": self.rng.bit_generator.state,
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (the optimizer class must match): every part is
        checked before any is set."""
        epoch = type(self).epoch.constraint.check(state["epoch"], "Trainer epoch")
        rng = np.random.default_rng()
        rng.bit_generator.state = state["rng_state"]
        self.optimizer.load_state_dict(state["optimizer"])  # checks everything, then sets
        self.epoch = epoch
        self.rng = rng

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, X, y, batch_size=4096):
        """Mean loss (and accuracy for classification) of the network on ``(X, y)``.

        Returns
        -------
        dict
            ``{'loss': float, 'accuracy': float}`` (accuracy only for classification losses),
            plus the trainer's extra metrics.
        """
        batch_size = check_batch_size(batch_size)
        Xc, Y = self._prepare(X, y)
        return self._evaluate_prepared(Xc, Y, batch_size)

    def _evaluate_prepared(self, X, Y, batch_size=4096):
        net = self.network
        kern = get_backend(self.backend)
        logits = self.loss.fused_activation is not None and getattr(net.layers[-1], "activation", None) == \
            self.loss.fused_activation
        n = X.shape[0]
        total = 0.0
        correct = 0
        outputs = [] if self.metrics else None
        for lo in range(0, n, batch_size):
            xb, yb = X[lo:lo + batch_size], Y[lo:lo + batch_size]
            out = net._forward_checked(xb, logits=logits)
            dout = np.empty_like(out)
            if self.loss.code is None:
                total += self.loss.forward_backward(out, yb, 1.0, dout, backend=self.backend)
                correct += self.loss.count_correct(out, yb, backend=self.backend)
            else:
                total += kern.loss_forward_backward(self.loss.code, out, yb, 1.0, dout)
                correct += kern.count_correct(self.loss.code, out, yb)
            if outputs is not None:
                outputs.append(out)
        result = {"loss": total / n}
        if self.loss.is_classification:
            result["accuracy"] = correct / n
        if outputs is not None:
            from . import metrics as _metrics

            out = np.concatenate(outputs)
            y_true = Y[:, 0] if (Y.shape[1] == 1 and out.shape[1] > 1) else Y
            for metric in self.metrics:
                fn = _metrics.get_metric(metric) if isinstance(metric, str) else metric
                name = metric if isinstance(metric, str) else getattr(metric, "__name__", "metric")
                result[name] = float(fn(y_true, out))
        return result
