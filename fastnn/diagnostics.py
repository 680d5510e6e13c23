"""Training diagnostics: spot the usual failure patterns and say what to try.

The checks turn the troubleshooting tables of the guides fastnn grew from
into code:

======================================  ==========================================================
What the numbers show                   Likely cause → what to try
======================================  ==========================================================
loss rising for several epochs          learning rate too high → divide it by 10
loss above chance level (ln k)          learning rate too high, labels not matching inputs
loss NaN/Inf                            learning rate too high, NaN in the data → lr / 10, clip_norm
loss flat from the start                learning rate too low → multiply it by 10; clipping too
                                        tight → relax clip_value/clip_norm; bad init → other seed
val_loss rising while loss falls        overfitting → EarlyStopping, Dropout, weight_decay, more data
all predictions one class               learning rate too high or imbalanced classes
negative loss                           loss does not match the target format
targets that fit another loss better    e.g. mse on one-hot rows → cross_entropy
first layer's gradient ≪ last layer's   vanishing gradients → ReLU/GELU instead of sigmoid/tanh,
                                        He init, BatchNorm, residual connections
gradient norms grow by orders of        exploding gradients → lower the learning rate, clip_norm
magnitude, or turn NaN/Inf
======================================  ==========================================================

Each ``check_*`` function is pure and returns a :class:`Finding` (or
``None`` / a list); :func:`diagnose` runs the history checks on a finished
:class:`~fastnn.History`. During training the
:class:`fastnn.callbacks.Diagnostics` callback runs them after every epoch
and emits each kind of finding once per ``fit`` as a :class:`FastnnWarning`.
"""
import math
import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["FastnnWarning", "Finding", "check_loss_trend", "check_worse_than_chance", "chance_loss",
           "check_overfitting", "check_non_finite",
           "check_negative_loss", "check_targets", "check_predictions", "check_gradient_flow", "diagnose",
           "emit", "VANISHING_FACTOR", "EXPLODING_FACTOR"]


from .errors import FastnnWarning  # noqa: E402  (defined low in the layers: the trainer warns too)


@dataclass(frozen=True)
class Finding:
    """One diagnosis: ``kind`` (a short key), what was seen, and what to try."""

    kind: str
    message: str
    hint: str

    def __str__(self):
        return f"{self.message}. Hint: {self.hint}"


def emit(finding, stacklevel=2):
    """Issue ``finding`` as a :class:`FastnnWarning`."""
    warnings.warn(str(finding), FastnnWarning, stacklevel=stacklevel + 1)


def _finite_list(values):
    return [float(v) for v in values]


# ---------------------------------------------------------------------- loss curves
def check_loss_trend(losses, patience=5, *, flat_tol=1e-3, rise_tol=0.1, clip_norm=0.0, clip_value=0.0,
                     name="loss"):
    """Rising or flat training loss over the last epochs.

    Parameters
    ----------
    losses : sequence of float
        Loss per epoch, oldest first.
    patience : int, default 5
        How many epochs a pattern must last.
    flat_tol : float, default 1e-3
        "Flat": the last ``patience + 1`` losses lie within ``flat_tol`` relative
        of each other, and the loss has improved by less than 10% since the first
        epoch (a model that learned and then converged is not flagged), and it is
        not already near zero.
    rise_tol : float, default 0.1
        "Rising": the loss rose in each of the last ``patience`` epochs, or it has
        stayed above its best for ``patience`` epochs and is now more than
        ``rise_tol`` (relative) above it.
    clip_norm, clip_value : float
        The trainer's clipping, mentioned in the hint of a flat loss.

    Returns
    -------
    Finding or None
        kind ``'loss_rising'`` or ``'loss_flat'``.
    """
    losses = _finite_list(losses)
    if len(losses) < patience + 1 or not all(math.isfinite(v) for v in losses[-(patience + 1):]):
        return None
    window = np.array(losses[-(patience + 1):])
    diffs = np.diff(window)
    best_i = int(np.argmin(losses))
    best = losses[best_i]
    now = losses[-1]
    since_best = len(losses) - 1 - best_i
    monotonic = bool((diffs > 0).all()) and now > window[0] * (1 + 1e-6) + 1e-12
    above_best = since_best >= patience and now - best > rise_tol * max(abs(best), 1e-12)
    if monotonic or above_best:
        what = (f"has risen in each of the last {patience} epochs (from {window[0]:.4g} to {now:.4g})"
                if monotonic else f"has stayed above its best ({best:.4g}) for {since_best} epochs, now {now:.4g}")
        return Finding(
            "loss_rising",
            f"the training {name} {what}",
            "the learning rate is probably too high and the steps overshoot: divide it by 10 "
            "(or use a decaying schedule from fastnn.schedules)")
    scale = max(abs(float(window.mean())), 1e-12)
    flat = (window.max() - window.min()) / scale < flat_tol
    progressed = now < 0.9 * losses[0]
    if flat and not progressed and abs(now) > 1e-3:
        hint = "the learning rate may be too low: multiply it by 10"
        clips = [f"{n}={v:g}" for n, v in (("clip_value", clip_value), ("clip_norm", clip_norm)) if v]
        if clips:
            hint += f"; gradient clipping may be too tight ({', '.join(clips)}): relax it"
        hint += "; or the initialisation started in a bad spot: try another seed"
        return Finding("loss_flat",
                       f"the training {name} has barely moved for {patience} epochs "
                       f"({window[0]:.6g} → {now:.6g})", hint)
    return None


def chance_loss(loss, n_outputs):
    """The loss of a uniform guess: ``ln(n_classes)`` for cross-entropy, ``ln 2`` for binary
    cross-entropy (per output); None for regression losses."""
    from . import losses as _losses

    loss = _losses.get(loss)
    if isinstance(loss, _losses.CrossEntropy) and n_outputs >= 2:
        return math.log(n_outputs)
    if isinstance(loss, _losses.BinaryCrossEntropy):
        return math.log(2.0)
    return None


def check_worse_than_chance(losses, loss, n_outputs, patience=5, margin=0.1):
    """The classification loss stayed above that of a uniform guess (by ``margin``, relative) for
    ``patience`` epochs: the steps are so large that the network does worse than guessing.
    A loss that has hardly moved at all (less than 10%) is left to :func:`check_loss_trend`.

    Returns a Finding of kind ``'worse_than_chance'`` or None.
    """
    chance = chance_loss(loss, n_outputs)
    losses = _finite_list(losses)
    if chance is None or len(losses) < patience:
        return None
    recent = np.array(losses[-patience:])
    if not np.isfinite(recent).all() or not (recent > chance * (1 + margin)).all():
        return None
    seen = np.array([v for v in losses if math.isfinite(v)])
    if seen.max() - seen.min() < 0.1 * abs(seen.mean()):
        return None  # it never moved: a learning rate too low (the flat-loss check), not too high
    what = f"a uniform guess over {n_outputs} classes" if n_outputs >= 2 and chance != math.log(2.0) \
        else "a coin flip per output"
    return Finding("worse_than_chance",
                   f"the training loss has stayed above {chance:.4g} (the loss of {what}) for {patience} "
                   f"epochs (last {recent[-1]:.4g}): the network does worse than guessing",
                   "the learning rate is probably too high: divide it by 10; also check that the labels "
                   "belong to their inputs (X and y shuffled together)")


def check_overfitting(losses, val_losses, patience=5):
    """``val_loss`` rose in each of the last ``patience`` epochs while the training loss fell.

    Returns a Finding of kind ``'overfitting'`` or None.
    """
    losses, val_losses = _finite_list(losses), _finite_list(val_losses)
    n = patience + 1
    if len(val_losses) < n or len(losses) < n:
        return None
    v, t = np.array(val_losses[-n:]), np.array(losses[-n:])
    if not (np.isfinite(v).all() and np.isfinite(t).all()):
        return None
    if (np.diff(v) > 0).all() and t[-1] < t[0]:
        return Finding("overfitting",
                       f"val_loss has risen for {patience} epochs ({v[0]:.4g} → {v[-1]:.4g}) while the training "
                       f"loss fell ({t[0]:.4g} → {t[-1]:.4g}): the network is overfitting",
                       "stop earlier (callbacks.EarlyStopping(restore_best_weights=True)), add Dropout or "
                       "weight_decay, or get more data")
    return None


_NOT_METRICS = ("lr", "epoch_time", "samples_per_s")


def check_non_finite(logs):
    """A NaN/Inf among an epoch's metrics (``loss``, ``val_loss``, ...). Finding ``'non_finite'`` or None."""
    bad = [k for k, v in (logs or {}).items()
           if k not in _NOT_METRICS and isinstance(v, (float, int, np.floating)) and not math.isfinite(v)]
    if not bad:
        return None
    return Finding("non_finite", f"training diverged: {', '.join(f'{k}={logs[k]}' for k in bad)}",
                   "the learning rate is probably too high: divide it by 10; also check the inputs for "
                   "NaN/Inf and consider clip_norm=1.0")


def check_negative_loss(loss_value, loss=None):
    """A negative loss means the loss does not fit the target format. Finding ``'negative_loss'`` or None."""
    if loss_value is None or not math.isfinite(loss_value) or loss_value >= 0:
        return None
    name = getattr(loss, "name", loss)
    return Finding("negative_loss",
                   f"the loss is negative ({loss_value:.4g}{f', loss {name!r}' if name else ''}): "
                   "the loss does not match the target format",
                   "binary_cross_entropy needs targets in [0, 1] (not [-1, 1]); cross_entropy needs class "
                   "indices or one-hot rows; use mse for real-valued targets")


# ---------------------------------------------------------------------- targets
def _is_one_hot(Y):
    return Y.ndim == 2 and Y.shape[1] >= 2 and np.isin(Y, (0, 1)).all() and np.allclose(Y.sum(axis=1), 1)


def check_targets(loss, y):
    """Targets that suit another loss better than ``loss``.

    Parameters
    ----------
    loss : str or Loss
    y : array-like
        The targets as given to ``fit`` (or as the loss prepared them).

    Returns
    -------
    list of Finding
        kind ``'target_format'``.
    """
    from . import losses as _losses

    loss = _losses.get(loss)
    Y = np.asarray(y)
    if Y.dtype.kind not in "biuf" or Y.size == 0:
        return []
    if Y.ndim == 1:
        Y = Y.reshape(-1, 1)
    if Y.ndim != 2:
        return []
    found = []
    if isinstance(loss, _losses.MeanSquaredError):
        if _is_one_hot(Y):
            found.append(Finding("target_format", "loss 'mse' on one-hot class targets",
                                 "for classification use loss='cross_entropy' (integer labels or one-hot "
                                 "rows) with a linear last layer: it trains faster and gives probabilities"))
        elif Y.shape[1] == 1 and np.isin(Y, (0, 1)).all() and len(np.unique(Y)) == 2:
            found.append(Finding("target_format", "loss 'mse' on 0/1 targets",
                                 "for a binary classifier use loss='binary_cross_entropy' with one linear "
                                 "output (or cross_entropy with two)"))
    elif isinstance(loss, _losses.CrossEntropy) and Y.shape[1] >= 2:
        sums = Y.sum(axis=1)
        if not np.allclose(sums, 1, atol=1e-3):
            found.append(Finding("target_format",
                                 f"cross_entropy target rows should sum to 1 (found sums from {sums.min():.4g} "
                                 f"to {sums.max():.4g})",
                                 "for several labels per sample use loss='binary_cross_entropy'; otherwise "
                                 "pass one-hot rows or class indices"))
    elif isinstance(loss, _losses.BinaryCrossEntropy) and _is_one_hot(Y):
        found.append(Finding("target_format", "binary_cross_entropy on one-hot rows (exactly one class per sample)",
                             "for mutually exclusive classes loss='cross_entropy' (softmax) fits better"))
    return found


# ---------------------------------------------------------------------- predictions
def _labels_from_targets(y):
    Y = np.asarray(y)
    if Y.ndim == 2 and Y.shape[1] > 1:
        return Y.argmax(axis=1)
    Y = Y.reshape(-1)
    if Y.dtype.kind == "f" and ((Y > 0) & (Y < 1)).any():  # binary probabilities
        return (Y >= 0.5).astype(np.int64)
    return Y.astype(np.int64)


def check_predictions(network, X, y, *, max_samples=4096, data_name="the data"):
    """All predictions one class although ``y`` has several. Finding ``'one_class'`` or None.

    Only for classification networks; looks at the first ``max_samples`` rows.
    """
    task = network.task or ("classification" if network.n_outputs > 1 else "regression")
    if task != "classification":
        return None
    X = np.asarray(X)[:max_samples]
    true = _labels_from_targets(np.asarray(y)[:max_samples])
    classes, counts = np.unique(true, return_counts=True)
    if len(classes) < 2:
        return None
    pred = network.predict(X)
    values = np.unique(pred)
    if len(values) != 1:
        return None
    k = int(values[0])
    share = counts.max() / counts.sum()
    hint = ("the learning rate may be too high (the output collapsed, e.g. dead ReLUs): divide it by 10 and "
            "retrain from a fresh initialisation")
    if share >= 0.8:
        hint += (f"; the classes are imbalanced (the largest holds {share:.0%} of {data_name}): weight or "
                 f"resample them")
    else:
        hint += "; or the classes are imbalanced: weight or resample them"
    return Finding("one_class",
                   f"all {len(pred)} predictions on {data_name} are class {k} although it holds "
                   f"{len(classes)} classes", hint)


# ---------------------------------------------------------------------- gradient flow
#: ``first / last`` RMS weight gradient below this: vanishing. Measured on 784-64x7-10 MNIST nets
#: (10k images, Adam 1e-3, batch 64; 2026-12-01) before training and after each of 5 epochs:
#: sigmoid 8e-6 before training, 0.007..0.04 after (Adam rescales the steps and it starts to learn);
#: tanh 0.39..0.62, ReLU/He 0.18..0.40, GELU 0.18..0.47: the healthy nets sit 20x above it.
VANISHING_FACTOR = 1e-2
#: the global gradient norm this many times its value before training: exploding
EXPLODING_FACTOR = 1e3


def check_gradient_flow(grad_norms, sizes, *, weights=None, initial_norm=None,
                        vanishing_factor=VANISHING_FACTOR, exploding_factor=EXPLODING_FACTOR):
    """Vanishing or exploding gradients, from one epoch's per-tensor gradient norms.

    Parameters
    ----------
    grad_norms : sequence of float
        L2 norm of each parameter tensor's gradient, in network order (first layer first).
    sizes : sequence of int
        Number of entries of each tensor: norms are compared as RMS values
        (``norm / sqrt(size)``), so a wide first layer and a narrow last one compare fairly.
    weights : sequence of bool, optional
        Which tensors are weight matrices/kernels (default: all). Only these are compared for
        vanishing: biases and normalisation scales do not carry a gradient through the depth.
    initial_norm : float, optional
        The global gradient norm before training (the exploding check's baseline).
    vanishing_factor : float, default :data:`VANISHING_FACTOR` (1e-2)
        Vanishing: the first weight tensor's RMS gradient is below ``vanishing_factor`` times the
        last one's (needs two weight tensors, and a last-layer gradient that is not zero).
    exploding_factor : float, default :data:`EXPLODING_FACTOR` (1e3)
        Exploding: a NaN/Inf norm, or the global norm above ``exploding_factor * initial_norm``.

    Returns
    -------
    list of Finding
        kinds ``'vanishing_gradients'`` and ``'exploding_gradients'``.
    """
    norms = np.asarray(grad_norms, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    if norms.shape != sizes.shape or norms.ndim != 1:
        raise ValueError(f"grad_norms ({norms.shape}) and sizes ({sizes.shape}) must be 1-D of one length")
    picked = np.ones(len(norms), bool) if weights is None else np.asarray(weights, bool)
    found = []
    total = float(np.sqrt(np.square(norms).sum()))
    if not np.isfinite(norms).all():
        found.append(Finding("exploding_gradients", "the gradient norm is NaN/Inf: the gradients exploded",
                             _EXPLODING_HINT))
        return found
    if initial_norm is not None and initial_norm > 0 and total > exploding_factor * initial_norm:
        found.append(Finding("exploding_gradients",
                             f"the gradient norm grew from {initial_norm:.3g} before training to {total:.3g} "
                             f"(more than {exploding_factor:g}x): the gradients are exploding", _EXPLODING_HINT))
    idx = np.flatnonzero(picked)
    if len(idx) >= 2:
        rms = norms[idx] / np.sqrt(np.maximum(sizes[idx], 1))
        first, last = rms[0], rms[-1]
        if last > 0 and first < vanishing_factor * last:
            found.append(Finding(
                "vanishing_gradients",
                f"the first layer's gradient (RMS {first:.2e}) is {first / last:.1e} times the last layer's "
                f"(RMS {last:.2e}; below {vanishing_factor:g}): the early layers are not learning "
                f"(vanishing gradients)",
                "use ReLU or GELU instead of sigmoid/tanh in the hidden layers, with He initialisation "
                "(Dense(init='he_normal'), the default for ReLU); add BatchNorm between layers, "
                "or residual connections"))
    return found


_EXPLODING_HINT = ("lower the learning rate (divide it by 10) and clip the gradient norm "
                   "(Trainer(clip_norm=1.0)); BatchNorm also keeps activations in range")


# ---------------------------------------------------------------------- post hoc
def diagnose(history, patience=5, *, flat_tol=1e-3, clip_norm=0.0, clip_value=0.0, loss=None, n_outputs=None):
    """Run the loss-curve checks on a finished :class:`~fastnn.History` (or dict of lists).

    ``loss`` and ``n_outputs`` (the trainer's loss and the network's width)
    enable the chance-level check.

    Returns
    -------
    list of Finding
    """
    h = getattr(history, "history", history)
    found = []
    losses = list(h.get("loss", []))
    for i in range(len(losses)):
        f = check_non_finite({k: v[i] for k, v in h.items() if i < len(v)})
        if f:
            found.append(f)
            break
    if losses:
        neg = check_negative_loss(min(losses))
        if neg:
            found.append(neg)
    trend = check_loss_trend(losses, patience, flat_tol=flat_tol, clip_norm=clip_norm, clip_value=clip_value)
    if trend:
        found.append(trend)
    if loss is not None and n_outputs is not None:
        chance = check_worse_than_chance(losses, loss, n_outputs, patience)
        if chance:
            found.append(chance)
    if "val_loss" in h:
        over = check_overfitting(losses, h["val_loss"], patience)
        if over:
            found.append(over)
    return found
