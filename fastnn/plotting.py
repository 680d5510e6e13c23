"""Plots of training: curves, confusion matrices, decision boundaries, lr range tests, gradient flow.

Needs matplotlib, an optional extra: ``pip install fastnn[plot]``. It is
imported only when a plot is made, so ``import fastnn`` stays light.

Every function returns the matplotlib ``Figure``. With ``path`` the figure is
written there (format from the suffix, e.g. ``.png``, ``.svg``, ``.pdf``) and
closed, so scripts that write many plots do not pile up open figures; without
``path`` it stays open for ``plt.show()`` (or a notebook displays it). On a
machine without a display (no ``DISPLAY``/``WAYLAND_DISPLAY`` and no
``MPLBACKEND``) the non-interactive ``Agg`` backend is chosen, unless
``matplotlib.pyplot`` was already imported or a backend was set explicitly.
"""
import os
import sys

import numpy as np

from ._validation import is_int

__all__ = ["plot_history", "plot_confusion_matrix", "plot_decision_boundary", "plot_lr_find", "plot_gradient_flow"]

_INSTALL_HINT = "plotting needs matplotlib: pip install fastnn[plot]  (or: pip install matplotlib)"
_SKIP_KEYS = ("epoch_time", "samples_per_s", "samples", "batches")


# ---------------------------------------------------------------------- matplotlib access
def _headless():
    if os.environ.get("MPLBACKEND"):
        return False
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return False


def _matplotlib():
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return matplotlib


def _pyplot():
    """``matplotlib.pyplot``, choosing Agg first when there is no display and no explicit choice."""
    matplotlib = _matplotlib()
    if "matplotlib.pyplot" not in sys.modules and _headless():
        explicit = getattr(matplotlib.rcParams, "_get_backend_or_none", lambda: None)()
        if explicit is None:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def is_interactive_backend():
    """True if pyplot's backend can open windows (False under Agg and other file-only backends)."""
    plt = _pyplot()
    backend = plt.get_backend().lower()
    return backend not in ("agg", "pdf", "ps", "svg", "pgf", "cairo", "template") and "inline" not in backend


def _finish(fig, path, plt):
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
        plt.close(fig)
    return fig


# ---------------------------------------------------------------------- training curves
def _history_dict(history):
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(f"expected a fastnn History or a dict of per-epoch lists, got {type(history).__name__}")
    return h


def _default_metrics(h):
    metrics = [m for m in ("loss", "accuracy") if m in h or "val_" + m in h]
    for key in h:
        if key.startswith("val_") or key in metrics or key in _SKIP_KEYS or key == "lr":
            continue
        if "val_" + key in h:
            metrics.append(key)
    lr = [v for v in h.get("lr", []) if v is not None]
    if len(set(lr)) > 1:
        metrics.append("lr")
    return metrics


def _resolve_metrics(h, metrics):
    if metrics is None:
        metrics = _default_metrics(h)
        if not metrics:
            raise ValueError(f"nothing to plot: the history has no 'loss' (keys: {sorted(h)})")
        return metrics
    if isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    for m in metrics:
        if m not in h and "val_" + m not in h:
            raise ValueError(f"metric {m!r} is not in the history; available: {sorted(h)}")
    return metrics


def _yscale(metric, h):
    """'log' for learning rates, and for positive losses spanning more than two decades."""
    values = np.asarray([v for key in (metric, "val_" + metric) for v in h.get(key, []) if v is not None],
                        dtype=np.float64)
    values = values[np.isfinite(values)]
    if metric != "lr" and "loss" not in metric:
        return "linear"
    if values.size == 0 or (values <= 0).any():
        return "linear"
    if metric == "lr":
        return "log" if values.max() / values.min() > 10 else "linear"
    return "log" if values.max() / values.min() > 100 else "linear"


def draw_history(fig, history, metrics=None, epochs=None):
    """Draw one panel per metric (training and ``val_`` curves) on ``fig``.

    Used by :func:`plot_history` and :class:`fastnn.callbacks.LivePlot`. Called
    again on the same figure with the same panels, it only updates the lines
    (no re-layout), which keeps live redraws cheap.
    """
    h = _history_dict(history)
    metrics = _resolve_metrics(h, metrics)
    series = tuple((m, key) for m in metrics for key in (m, "val_" + m) if h.get(key))
    cache = getattr(fig, "_fastnn_history", None)
    rebuild = cache is None or cache["series"] != series
    if rebuild:
        fig.clear()
        axes = dict(zip(metrics, fig.subplots(1, len(metrics), squeeze=False)[0]))
        lines = {}
        for m, key in series:
            label = "learning rate" if m == "lr" else ("validation" if key.startswith("val_") else "train")
            style = "--" if key.startswith("val_") else "-"
            lines[key] = axes[m].plot([], [], style, markersize=3, label=label)[0]
        for m, ax in axes.items():
            ax.set_title(m.replace("_", " "))
            ax.set_xlabel("epoch")
            ax.grid(True, alpha=0.3)
            if m != "lr" and any(sm == m for sm, _ in series):
                ax.legend()
        cache = {"series": series, "axes": axes, "lines": lines}
        fig._fastnn_history = cache
    for m, key in series:
        y = np.asarray([np.nan if v is None else v for v in h[key]], dtype=np.float64)
        if epochs is not None and len(epochs) >= len(y):
            x = np.asarray(epochs[:len(y)], dtype=np.float64) + 1
        else:
            x = np.arange(1, len(y) + 1, dtype=np.float64)
        line = cache["lines"][key]
        line.set_data(x, y)
        line.set_marker("o" if len(y) <= 30 else "")
    for m, ax in cache["axes"].items():
        scale = _yscale(m, h)
        if ax.get_yscale() != scale:
            ax.set_yscale(scale)
        ax.relim()
        ax.autoscale_view()
    if rebuild:
        fig.tight_layout()
    return fig


def plot_history(history, path=None, metrics=None):
    """Training curves: one panel per metric, training vs validation.

    Parameters
    ----------
    history : History or dict
        What :meth:`fastnn.Trainer.fit` returned (or its ``.history`` dict).
    path : str or path, optional
        Write the figure there (e.g. ``'curves.png'``) and close it.
    metrics : list of str, optional
        Base names to plot (``'loss'``, ``'accuracy'``, ``'lr'``, an extra metric);
        default: loss and accuracy, extra metrics that have a ``val_`` twin, and
        the learning rate when it changed.

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    h = _history_dict(history)
    metrics = _resolve_metrics(h, metrics)
    fig = plt.figure(figsize=(4.5 * len(metrics), 3.6))
    draw_history(fig, h, metrics, epochs=getattr(history, "epoch", None))
    return _finish(fig, path, plt)


# ---------------------------------------------------------------------- confusion matrix
def plot_confusion_matrix(cm, class_names=None, path=None, normalize=False, *, title=None, cmap="Blues"):
    """A confusion matrix as a heat map with the counts (or row fractions) written in.

    Parameters
    ----------
    cm : array-like of shape (n_classes, n_classes)
        Rows are true classes, columns predicted ones (as
        :func:`fastnn.metrics.confusion_matrix` returns).
    class_names : list of str, optional
    path : str or path, optional
    normalize : bool, default False
        Show each row as fractions of the true class (empty rows stay 0).

    Returns
    -------
    matplotlib.figure.Figure
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise ValueError(f"cm must be a square 2-D matrix, got shape {cm.shape}")
    if cm.dtype.kind not in "biuf" or not np.isfinite(cm).all() or (cm < 0).any():
        raise ValueError("cm must hold finite non-negative counts")
    n = cm.shape[0]
    if class_names is None:
        class_names = [str(i) for i in range(n)]
    class_names = [str(c) for c in class_names]
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for {n} classes")
    values = cm.astype(np.float64)
    if normalize:
        rows = values.sum(axis=1, keepdims=True)
        values = np.divide(values, rows, out=np.zeros_like(values), where=rows > 0)
    plt = _pyplot()
    side = min(3.0 + 0.45 * n, 14.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    im = ax.imshow(values, cmap=cmap, vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=class_names, rotation=45 if max(map(len, class_names)) > 3 else 0,
                  ha="right" if max(map(len, class_names)) > 3 else "center")
    ax.set_yticks(range(n), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalize else "confusion matrix"))
    if n <= 30:
        vmax = values.max() if values.size else 0
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text = f"{v:.2f}" if normalize else (f"{int(v)}" if cm.dtype.kind in "biu" else f"{v:.3g}")
                ax.text(j, i, text, ha="center", va="center", fontsize=8 if n > 10 else 10,
                        color="white" if vmax and v > vmax / 2 else "black")
    fig.tight_layout()
    return _finish(fig, path, plt)


# ---------------------------------------------------------------------- decision boundary
def plot_decision_boundary(network, X, y, path=None, resolution=200, *, margin=0.1, title=None):
    """Regions a 2-input network assigns to each class, with the data points on top.

    Parameters
    ----------
    network : Network
        With 2 inputs; a classifier (regions coloured by predicted class) or a
        regressor (its first output as a filled contour).
    X : array-like of shape (n_samples, 2)
    y : array-like
        Labels (or one-hot rows) colouring the points; values for a regressor.
    path : str or path, optional
    resolution : int, default 200
        Grid points per axis.
    margin : float, default 0.1
        Extra room around the data, as a fraction of its range.

    Returns
    -------
    matplotlib.figure.Figure
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary needs 2-D inputs: X must have shape (n, 2), got {X.shape}")
    if network.n_inputs != 2:
        raise ValueError(f"plot_decision_boundary needs a network with 2 inputs, not {network.n_inputs}")
    if not is_int(resolution) or not 2 <= resolution <= 2000:
        raise ValueError(f"resolution must be an integer in [2, 2000], not {resolution!r}")
    if not np.isfinite(X).all() or len(X) == 0:
        raise ValueError("X must be non-empty and finite")
    y = np.asarray(y)
    if len(y) != len(X):
        raise ValueError(f"len(X) = {len(X)} but len(y) = {len(y)}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    out = network.predict(grid)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    if out.ndim == 1:  # class labels
        labels = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)
        n_classes = int(max(out.max(), labels.max() if labels.size else 0, network.n_outputs - 1, 1)) + 1
        cmap = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
        levels = np.arange(n_classes + 1) - 0.5
        ax.contourf(gx, gy, out.reshape(gx.shape), levels=levels, cmap=cmap, vmin=-0.5,
                    vmax=cmap.N - 0.5, alpha=0.35)
        ax.scatter(X[:, 0], X[:, 1], c=labels, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, s=12,
                   edgecolors="k", linewidths=0.3)
    else:
        z = np.asarray(out)[:, 0].reshape(gx.shape)
        cs = ax.contourf(gx, gy, z, levels=20, cmap="viridis", alpha=0.6)
        fig.colorbar(cs, ax=ax)
        values = y.reshape(len(y), -1)[:, 0].astype(np.float64)
        ax.scatter(X[:, 0], X[:, 1], c=values, cmap="viridis", s=12, edgecolors="k", linewidths=0.3,
                   vmin=cs.get_clim()[0], vmax=cs.get_clim()[1])
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title or "decision boundary")
    fig.tight_layout()
    return _finish(fig, path, plt)


# ---------------------------------------------------------------------- lr range test
def plot_lr_find(result, path=None):
    """Loss against learning rate (log scale) from :func:`fastnn.lr_finder.lr_find`, with the suggestion marked.

    Parameters
    ----------
    result : LRFinderResult
        Anything with ``lrs`` and ``losses`` (and optionally ``smoothed_losses``, ``suggestion``).
    path : str or path, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    lrs = np.asarray(result.lrs, dtype=np.float64)
    losses = np.asarray(result.losses, dtype=np.float64)
    if lrs.size == 0 or lrs.shape != losses.shape:
        raise ValueError("the result holds no (lr, loss) points to plot")
    smoothed = getattr(result, "smoothed_losses", None)
    smoothed = losses if smoothed is None else np.asarray(smoothed, dtype=np.float64)
    suggestion = getattr(result, "suggestion", None)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.plot(lrs, losses, color="0.7", linewidth=0.8, label="batch loss")
    ax.plot(lrs, smoothed, color="C0", linewidth=1.8, label="smoothed")
    ax.set_xscale("log")
    finite = smoothed[np.isfinite(smoothed)]
    if finite.size > 1:
        i_min = int(np.nanargmin(np.where(np.isfinite(smoothed), smoothed, np.inf)))
        lo = finite.min()
        hi = max(float(np.nanmax(smoothed[:i_min + 1])), lo)
        if hi > lo:
            pad = hi - lo
            ax.set_ylim(lo - 0.1 * pad, hi + 0.5 * pad)
    if suggestion is not None and np.isfinite(suggestion):
        y_at = float(np.interp(np.log(suggestion), np.log(lrs), smoothed)) if lrs.size > 1 else smoothed[0]
        ax.axvline(suggestion, color="C3", linestyle="--", linewidth=1)
        ax.plot([suggestion], [y_at], "o", color="C3", label=f"suggestion {suggestion:.2e}")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title("learning-rate range test")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _finish(fig, path, plt)


# ---------------------------------------------------------------------- gradient flow
def plot_gradient_flow(flow, path=None, *, metrics=("grad_norm", "update_ratio"), weights_only=True, title=None):
    """Per-layer norms against the epoch (log scale) from a :class:`fastnn.callbacks.GradientFlow`.

    Parameters
    ----------
    flow : GradientFlow
        Anything with ``names``, ``weights`` (bool per tensor) and ``history`` (``'epoch'`` and the
        ``(n_epochs, n_tensors)`` arrays named in ``metrics``); ``initial_grad_norm`` is drawn at
        epoch 0 of ``grad_norm`` when present.
    path : str or path, optional
    metrics : sequence of str, default ('grad_norm', 'update_ratio')
        One panel each, from ``grad_norm``, ``update_norm``, ``weight_norm``, ``update_ratio``.
    weights_only : bool, default True
        Draw only weight matrices/kernels (biases and normalisation scales clutter the picture).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    hist = flow.history
    unknown = [m for m in metrics if m not in hist or m in ("epoch", "probe_loss")]
    if not metrics or unknown:
        raise ValueError(f"unknown gradient-flow metric(s) {unknown}; choose from grad_norm, update_norm, "
                         f"weight_norm, update_ratio")
    epochs = np.asarray(hist["epoch"]) + 1  # values after epoch k are drawn at k + 1; before training at 0
    if epochs.size == 0:
        raise ValueError("the gradient flow holds no epochs to plot (train with the callback first)")
    names = list(flow.names)
    picked = [i for i in range(len(names)) if flow.weights[i] or not weights_only]
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.9), squeeze=False)
    cmap = plt.get_cmap("viridis")
    initial = getattr(flow, "initial_grad_norm", None)
    for ax, metric in zip(axes[0], metrics):
        values = np.asarray(hist[metric], dtype=np.float64)
        for rank, i in enumerate(picked):
            x, y = epochs, values[:, i]
            if metric == "grad_norm" and initial is not None:
                x, y = np.concatenate([[0], x]), np.concatenate([[initial[i]], y])
            y = np.where(y > 0, y, np.nan)  # log scale: zero has no place
            ax.plot(x, y, marker="o", markersize=3, color=cmap(rank / max(len(picked) - 1, 1)), label=names[i])
        ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=7, title="layer (first: dark)", title_fontsize=7)
    fig.suptitle(title or "gradient flow per layer")
    fig.tight_layout()
    return _finish(fig, path, plt)
