"""Interleaved timing, the loop the benchmark CLIs share: each contender once per round, in turn (each
round starting one contender later), so a change of machine load hits them all alike (compare ratios
within one run)."""
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
    names = list(runs)
    for r in range(rounds):
        # Each round starts one contender later: whoever runs right after another runtime's parallel
        # region shares the cores with its still-spinning threads (OpenMP's spin-wait before sleeping),
        # and with a fixed order that was always the same contender (bench.compare measured fastnn
        # `auto` 10-20% below `shards`, the same plan, at batch 32). Medians over rotated rounds spread it.
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
    return times
