"""Smoke test of bench.inference (fastnn vs PyTorch predict and latency, one interleaved run)."""
from bench import inference


def test_inference_table_runs(capsys):
    med, n = inference.measure(n=600, batch=300, threads=(1, 2), rounds=1, latency_calls=5)
    assert {"fastnn-predict-1t", "fastnn-predict-2t", "fastnn-latency"} <= set(med)
    assert all(v > 0 for v in med.values()) and n["fastnn-predict-2t"] == 600 and n["fastnn-latency"] == 1
    inference.main(["--n", "600", "--batch", "300", "--rounds", "1", "--threads", "2", "--seq-n", "40"])
    assert "single-sample latency" in capsys.readouterr().out


def test_sequence_rows_run(capsys):
    med = inference.measure_sequences(n=40, batch=20, threads=(1, 2), rounds=1, latency_calls=2)
    for model in inference.SEQ_MODELS:
        assert {(model, "fastnn", 20, 1), (model, "fastnn", 20, 2), (model, "fastnn", 1, 1)} <= set(med)
    assert all(v > 0 for v in med.values())
    inference.print_sequences(med, 20, (1, 2))
    out = capsys.readouterr().out
    assert "lstm" in out and "transformer" in out
