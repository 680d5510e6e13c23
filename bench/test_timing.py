"""bench.timing.interleaved_times: every contender once per round, each round starting one later."""
from bench.timing import interleaved_times


def test_rounds_rotate_the_order_and_time_every_contender_once_per_round():
    order = []
    times = interleaved_times({k: (lambda k=k: order.append(k)) for k in "abc"}, 4, warmup=True)
    assert order[:3] == ["a", "b", "c"]  # the warm-up, in the given order
    assert order[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b", "a", "b", "c"]
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4, "c": 4}
    assert all(t >= 0 for v in times.values() for t in v)


def test_no_contenders_gives_no_times():
    assert interleaved_times({}, 3) == {}
