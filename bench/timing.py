"""Interleaved timing, the loop the benchmark CLIs share: each contender once per round, in turn, so
a change of machine load hits them all alike (compare ratios within one run)."""
import time


def interleaved_times(runs, rounds, *, warmup=True):
    """Seconds per call of every contender, round by round.

    Parameters
    ----------
    runs : dict of str to callable
        Name -> a call that does the timed work (an epoch, a predict pass).
    rounds : int
    warmup : bool, default True
        Call each once untimed first (compilation, caches).

    Returns
    -------
    dict of str to list of float
        Name -> the ``rounds`` timings, in order.
    """
    if warmup:
        for fn in runs.values():
            fn()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times
