"""Sweep curves, drawn the way :mod:`fastnn.plotting` draws (matplotlib loaded lazily, Agg when headless,
the figure returned, written and closed when a ``path`` is given)."""
from ..plotting import _finish, _pyplot
from .grid import config_label

_X_AXES = {"epoch": "epoch", "time": "seconds of training"}


def plot_sweep(result, path=None, *, metrics=("loss",), x="epoch", title=None):
    """One panel per metric; every run a line, coloured by configuration (one legend entry each).

    Parameters
    ----------
    result : SweepResult
    path : str or path, optional
        Write the figure there (``.png``, ``.svg``...) and close it.
    metrics : sequence of str
        Per-epoch curves of the runs (``'loss'``, ``'val_loss'``, ``'val_accuracy'``...).
    x : {'epoch', 'time'}
        Loss per epoch, or per second of training (the batch-size comparisons need both).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        Without matplotlib (``pip install fastnn[plot]``).
    ValueError
        For an unknown ``x`` or a metric no run logged.
    """
    if x not in _X_AXES:
        raise ValueError(f"x must be one of {sorted(_X_AXES)}, not {x!r}")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    logged = {key for run in result.runs for key in run["curves"]}
    for metric in metrics:
        if metric not in logged:
            raise ValueError(f"no run logged {metric!r}; available: {sorted(logged - {'time'})}")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for ax, metric in zip(axes[0], metrics):
        for i, config in enumerate(result.configs):
            for j, (_seed, curves) in enumerate(result.curves(config)):
                ys = curves.get(metric, [])
                xs = curves["time"] if x == "time" else range(1, len(ys) + 1)
                ax.plot(list(xs)[:len(ys)], ys, color=colours[i % len(colours)], linewidth=1,
                        alpha=0.8, label=config_label(config) if j == 0 else None)
        ax.set_xlabel(_X_AXES[x])
        ax.set_ylabel(metric)
        if "loss" in metric and all(v > 0 for r in result.runs for v in r["curves"].get(metric, [1])):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    axes[0][0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path, plt)

