"""fastnn.metrics against sklearn.metrics on random data, plus validation."""

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import rankdata

from fastnn import metrics as M

# sklearn warns about k >= n_classes and zero divisions that these tests provoke on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")

SEEDS = range(3)
CLASS_COUNTS = (2, 3, 7)


def random_labels(rng, n_classes, n=200, missing=()):
    """Labels in [0, n_classes) with the classes in ``missing`` removed."""
    keep = np.setdiff1d(np.arange(n_classes), missing)
    return rng.choice(keep, size=n)


def probability_rows(rng, n, n_classes, decimals=None):
    scores = rng.random((n, n_classes))
    if decimals is not None:
        scores = np.round(scores, decimals) + 1e-3  # coarse grid: many ties
    return scores / scores.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------- accuracy

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
def test_accuracy_labels_scores_and_one_hot_match_sklearn(seed, n_classes):
    rng = np.random.default_rng(seed)
    y_true = random_labels(rng, n_classes)
    scores = rng.normal(size=(200, n_classes))
    y_pred = scores.argmax(axis=1)
    expected = skm.accuracy_score(y_true, y_pred)
    assert M.accuracy(y_true, y_pred) == pytest.approx(expected, abs=1e-15)
    assert M.accuracy(y_true, scores) == pytest.approx(expected, abs=1e-15)
    one_hot = np.eye(n_classes)[y_true]
    assert M.accuracy(one_hot, scores) == pytest.approx(expected, abs=1e-15)
    assert M.accuracy(y_true, y_pred, normalize=False) == skm.accuracy_score(y_true, y_pred, normalize=False)


def test_accuracy_probability_column_thresholds():
    y_true = np.array([0, 1, 1, 0])
    probabilities = np.array([[0.2], [0.7], [0.4], [0.51]])
    assert M.accuracy(y_true, probabilities) == 0.5
    logits = np.array([[-1.0], [2.0], [-0.3], [-0.1]])
    assert M.accuracy(y_true, logits, threshold=0.0) == 0.75
    # A (n, 1) column of exact 0/1 labels is read as labels.
    assert M.accuracy(y_true.reshape(-1, 1).astype(float), y_true) == 1.0


def test_accuracy_doc_example():
    assert M.accuracy([0, 1, 2, 2], [[0.9, 0.1, 0.0], [0.2, 0.7, 0.1],
                                     [0.1, 0.1, 0.8], [0.5, 0.3, 0.2]]) == 0.75


# ---------------------------------------------------------------- top-k

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_classes", (3, 5, 10))
@pytest.mark.parametrize("decimals", (None, 1))
def test_top_k_accuracy_matches_sklearn_including_ties(seed, n_classes, decimals):
    rng = np.random.default_rng(seed)
    y_true = random_labels(rng, n_classes)
    scores = rng.random((200, n_classes))
    if decimals is not None:
        scores = np.round(scores, decimals)
    for k in range(1, n_classes + 1):
        expected = skm.top_k_accuracy_score(y_true, scores, k=k, labels=np.arange(n_classes))
        assert M.top_k_accuracy(y_true, scores, k) == pytest.approx(expected, abs=1e-15), k


@pytest.mark.parametrize("scores", [np.linspace(0, 1, 50), np.linspace(-2, 2, 50)])
def test_top_k_accuracy_binary_1d_matches_sklearn(scores):
    y_true = np.random.default_rng(0).integers(0, 2, 50)
    for k in (1, 2):
        assert M.top_k_accuracy(y_true, scores, k) == skm.top_k_accuracy_score(y_true, scores, k=k)


def test_top_k_rejects_bad_k_and_out_of_range_labels():
    with pytest.raises(ValueError, match="k must be"):
        M.top_k_accuracy([0, 1], [[0.1, 0.9], [0.8, 0.2]], 0)
    with pytest.raises(ValueError, match="only 2 columns"):
        M.top_k_accuracy([0, 2], [[0.1, 0.9], [0.8, 0.2]], 1)


# ---------------------------------------------------------------- confusion matrix

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
def test_confusion_matrix_matches_sklearn(seed, n_classes):
    rng = np.random.default_rng(seed)
    y_true = random_labels(rng, n_classes, missing=(n_classes - 1,) if n_classes > 2 else ())
    y_pred = random_labels(rng, n_classes, missing=(0,) if n_classes > 2 else ())
    labels = np.arange(n_classes)
    np.testing.assert_array_equal(M.confusion_matrix(y_true, y_pred, n_classes),
                                  skm.confusion_matrix(y_true, y_pred, labels=labels))
    for normalize in ("true", "pred", "all"):
        np.testing.assert_allclose(
            M.confusion_matrix(y_true, y_pred, n_classes, normalize=normalize),
            skm.confusion_matrix(y_true, y_pred, labels=labels, normalize=normalize), atol=1e-15)


def test_confusion_matrix_sizes_and_range_check():
    scores = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1]])
    # Size comes from the score columns even when class 2 never occurs.
    assert M.confusion_matrix([0, 0], scores).shape == (3, 3)
    assert M.confusion_matrix([0, 3], [0, 1]).shape == (4, 4)
    with pytest.raises(ValueError, match="out of range for n_classes=3"):
        M.confusion_matrix([0, 7], [0, 1], n_classes=3)
    with pytest.raises(ValueError, match="normalize"):
        M.confusion_matrix([0, 1], [0, 1], normalize="rows")
    with pytest.raises(ValueError, match="pass n_classes"):
        M.confusion_matrix([0, 10**9], [0, 1])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 1), min_size=2, max_size=40),
       st.lists(st.integers(0, 4), min_size=40, max_size=40))
def test_average_ranks_and_binary_auc_on_heavy_ties(labels, coarse_scores):
    """Ranks equal scipy's 'average' ranks; AUC equals sklearn's, ties included."""
    y_true = np.array(labels)
    scores = np.array(coarse_scores[: y_true.size], dtype=float) / 4
    np.testing.assert_allclose(M.classification._average_ranks(scores), rankdata(scores), rtol=0, atol=1e-12)
    if 0 < y_true.sum() < y_true.size:
        assert M.roc_auc(y_true, scores) == pytest.approx(skm.roc_auc_score(y_true, scores), rel=1e-12)


# ---------------------------------------------------------------- precision / recall / F1

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
@pytest.mark.parametrize("average", [None, "macro", "micro", "weighted"])
@pytest.mark.parametrize("zero_division", [0.0, 1.0, np.nan])
def test_precision_recall_f1_matches_sklearn(seed, n_classes, average, zero_division):
    rng = np.random.default_rng(seed)
    # Class 1 never predicted and class 0 absent from y_true: zero-division paths.
    y_true = random_labels(rng, n_classes, n=60, missing=(0,) if n_classes > 2 else ())
    y_pred = random_labels(rng, n_classes, n=60, missing=(1,) if n_classes > 2 else ())
    ours = M.precision_recall_f1(y_true, y_pred, average=average, zero_division=zero_division)
    theirs = skm.precision_recall_fscore_support(y_true, y_pred, average=average,
                                                 zero_division=zero_division)
    for our_value, their_value in zip(ours[:3], theirs[:3]):
        np.testing.assert_allclose(our_value, their_value, rtol=1e-12, equal_nan=True)
    if average is None:
        np.testing.assert_array_equal(ours[3], theirs[3])
    else:
        assert ours[3] == y_true.size


@pytest.mark.parametrize("average", [None, "macro", "micro", "weighted"])
def test_precision_recall_f1_with_labels_matches_sklearn(average):
    rng = np.random.default_rng(7)
    y_true, y_pred = rng.integers(0, 5, 80), rng.integers(0, 5, 80)
    for labels in ([4, 0, 2], [1, 3, 6], list(range(8))):
        ours = M.precision_recall_f1(y_true, y_pred, average=average, labels=labels)
        theirs = skm.precision_recall_fscore_support(y_true, y_pred, average=average, labels=labels,
                                                     zero_division=0.0)
        for our_value, their_value in zip(ours[:3], theirs[:3]):
            np.testing.assert_allclose(our_value, their_value, rtol=1e-12)


def test_all_zero_division_cases_match_sklearn():
    # Predicted class never true, true class never predicted, class absent everywhere.
    y_true, y_pred = np.array([0, 0, 0]), np.array([1, 1, 1])
    for zero_division in (0.0, 1.0, np.nan):
        for average in (None, "macro", "weighted", "micro"):
            ours = M.precision_recall_f1(y_true, y_pred, average=average,
                                         labels=[0, 1, 2], zero_division=zero_division)
            theirs = skm.precision_recall_fscore_support(y_true, y_pred, average=average,
                                                         labels=[0, 1, 2], zero_division=zero_division)
            for our_value, their_value in zip(ours[:3], theirs[:3]):
                np.testing.assert_allclose(our_value, their_value, equal_nan=True)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_average_and_conveniences_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true, y_pred = rng.integers(0, 2, 100), rng.integers(0, 2, 100)
    for pos_label in (0, 1):
        for ours, theirs in ((M.precision, skm.precision_score), (M.recall, skm.recall_score),
                             (M.f1_score, skm.f1_score)):
            assert ours(y_true, y_pred, average="binary", pos_label=pos_label) == pytest.approx(
                theirs(y_true, y_pred, pos_label=pos_label), rel=1e-12)
    y_true, y_pred = rng.integers(0, 4, 100), rng.integers(0, 4, 100)
    for ours, theirs in ((M.precision, skm.precision_score), (M.recall, skm.recall_score),
                         (M.f1_score, skm.f1_score)):
        assert ours(y_true, y_pred) == pytest.approx(theirs(y_true, y_pred, average="macro"), rel=1e-12)


def test_binary_average_rejects_multiclass():
    with pytest.raises(ValueError, match="two-class"):
        M.precision_recall_f1([0, 1, 2], [0, 1, 2], average="binary")
    with pytest.raises(ValueError, match="average must be"):
        M.precision_recall_f1([0, 1], [0, 1], average="samples")
    with pytest.raises(ValueError, match="zero_division"):
        M.precision_recall_f1([0, 1], [0, 1], zero_division=0.5)


# ---------------------------------------------------------------- ROC AUC

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("decimals", (None, 1))
def test_binary_roc_auc_matches_sklearn_including_ties(seed, decimals):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 2, 300)
    scores = rng.random(300) + 0.3 * y_true
    if decimals is not None:
        scores = np.round(scores, decimals)
    expected = skm.roc_auc_score(y_true, scores)
    assert M.roc_auc(y_true, scores) == pytest.approx(expected, rel=1e-12)
    assert M.roc_auc(y_true, scores[:, None]) == pytest.approx(expected, rel=1e-12)
    assert M.roc_auc(y_true, np.column_stack([1 - scores, scores])) == pytest.approx(expected, rel=1e-12)


def test_roc_auc_all_tied_is_one_half():
    assert M.roc_auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5
    assert M.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_classes", (3, 6))
@pytest.mark.parametrize("decimals", (None, 1))
def test_multiclass_roc_auc_matches_sklearn(seed, n_classes, decimals):
    rng = np.random.default_rng(seed)
    y_true = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, 150)])
    scores = probability_rows(rng, y_true.size, n_classes, decimals)
    for multi_class, averages in (("ovr", ("macro", "weighted", "micro")), ("ovo", ("macro", "weighted"))):
        for average in averages:
            expected = skm.roc_auc_score(y_true, scores, multi_class=multi_class, average=average)
            assert M.roc_auc(y_true, scores, multi_class=multi_class, average=average) == pytest.approx(
                expected, rel=1e-12), (multi_class, average)
    np.testing.assert_allclose(M.roc_auc(y_true, scores, average=None),
                               skm.roc_auc_score(y_true, scores, multi_class="ovr", average=None),
                               rtol=1e-12)


def test_roc_auc_undefined_cases_raise():
    with pytest.raises(ValueError, match="only one class"):
        M.roc_auc([1, 1, 1], [0.2, 0.4, 0.9])
    with pytest.raises(ValueError, match=r"class\(es\) \[2\] never occur"):
        M.roc_auc([0, 1, 0, 1], probability_rows(np.random.default_rng(0), 4, 3))
    with pytest.raises(ValueError, match="binary scores"):
        M.roc_auc([0, 2, 1], [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="multi_class"):
        M.roc_auc([0, 1, 2], np.eye(3), multi_class="ova")


# ---------------------------------------------------------------- classification report

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_classes", CLASS_COUNTS)
def test_classification_report_matches_sklearn(seed, n_classes):
    rng = np.random.default_rng(seed)
    y_true = random_labels(rng, n_classes, n=90, missing=(1,) if n_classes > 2 else ())
    y_pred = random_labels(rng, n_classes, n=90)
    ours = M.classification_report(y_true, y_pred, output_dict=True)
    theirs = skm.classification_report(y_true, y_pred, output_dict=True, zero_division=0.0)
    assert list(ours) == list(theirs)
    assert ours["accuracy"] == pytest.approx(theirs["accuracy"], rel=1e-12)
    for key in theirs:
        if key != "accuracy":
            for column in ("precision", "recall", "f1-score", "support"):
                assert ours[key][column] == pytest.approx(theirs[key][column], rel=1e-12), (key, column)
    for digits in (2, 4):
        assert M.classification_report(y_true, y_pred, digits=digits) == skm.classification_report(
            y_true, y_pred, digits=digits, zero_division=0.0)


def test_classification_report_names_and_label_subsets():
    y_true, y_pred = np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 2, 1])
    names = ["cat", "dog", "bird"]
    assert M.classification_report(y_true, y_pred, target_names=names) == skm.classification_report(
        y_true, y_pred, target_names=names, digits=4)
    # A subset of labels: 'micro avg' replaces 'accuracy', as sklearn does.
    ours = M.classification_report(y_true, y_pred, labels=[0, 2], output_dict=True)
    theirs = skm.classification_report(y_true, y_pred, labels=[0, 2], output_dict=True)
    assert list(ours) == list(theirs) and "micro avg" in ours
    # Names indexed by class id: every named class is reported, absent ones with support 0.
    palette = ["black", "white", "red", "green", "blue"]
    report = M.classification_report([0, 2, 2], [0, 2, 4], target_names=palette, output_dict=True)
    assert list(report)[:5] == palette and report["white"]["support"] == 0
    with pytest.raises(ValueError, match="target_names"):
        M.classification_report([0, 5], [0, 5], target_names=["a", "b", "c"])


# ---------------------------------------------------------------- regression

@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(50,), (50, 1), (50, 3)])
def test_regression_metrics_match_sklearn(seed, shape):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=shape)
    y_pred = y_true + rng.normal(scale=0.3, size=shape)
    pairs = ((M.mean_absolute_error, skm.mean_absolute_error),
             (M.mean_squared_error, skm.mean_squared_error),
             (M.root_mean_squared_error, skm.root_mean_squared_error),
             (M.r2_score, skm.r2_score))
    for ours, theirs in pairs:
        for multioutput in ("uniform_average", "raw_values"):
            np.testing.assert_allclose(ours(y_true, y_pred, multioutput=multioutput),
                                       theirs(y_true, y_pred, multioutput=multioutput), rtol=1e-12)


def test_regression_column_and_vector_are_interchangeable_and_float32_upcast():
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([[1.5], [1.5], [3.5], [3.5]], dtype=np.float32)
    assert M.mean_squared_error(y_true, y_pred) == 0.25
    assert M.root_mean_squared_error(y_true, y_pred) == 0.5
    assert M.r2_score(y_true, y_pred) == pytest.approx(skm.r2_score(y_true, y_pred.ravel()))


def test_r2_constant_target_matches_sklearn_force_finite():
    constant = np.full(5, 2.0)
    assert M.r2_score(constant, constant) == skm.r2_score(constant, constant) == 1.0
    assert M.r2_score(constant, constant + 1) == skm.r2_score(constant, constant + 1) == 0.0
    with pytest.raises(ValueError, match="two samples"):
        M.r2_score([1.0], [1.0])


# ---------------------------------------------------------------- validation

ALL_PAIR_METRICS = [M.accuracy, M.confusion_matrix, M.precision_recall_f1, M.classification_report,
                    M.mean_absolute_error, M.mean_squared_error, M.root_mean_squared_error,
                    M.r2_score, M.roc_auc, M.top_k_accuracy]


@pytest.mark.parametrize("metric", ALL_PAIR_METRICS, ids=lambda f: f.__name__)
def test_invalid_input_raises_clear_value_error(metric):
    with pytest.raises(ValueError, match="different numbers of samples"):
        metric([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        metric([], [])
    with pytest.raises(ValueError, match="NaN"):
        metric([0, 1, 0], [[0.1, 0.9], [np.nan, 0.5], [0.3, 0.7]])


def test_label_validation_messages():
    with pytest.raises(ValueError, match="non-integer"):
        M.accuracy([0, 1], [0.2, 0.7])  # 1-D probabilities are ambiguous
    with pytest.raises(ValueError, match="negative label"):
        M.accuracy([-1, 1], [1, 1])
    with pytest.raises(ValueError, match="only 2 columns"):
        M.accuracy([0, 3], [[0.1, 0.9], [0.8, 0.2]])
    with pytest.raises(ValueError, match="infinite"):
        M.mean_squared_error([0.0, 1.0], [np.inf, 1.0])
    with pytest.raises(ValueError, match="must hold numbers"):
        M.accuracy(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="outputs"):
        M.mean_squared_error(np.zeros((3, 2)), np.zeros((3, 3)))


# ---------------------------------------------------------------- registry

def softmax(logits):
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_registry_classification_metrics_on_raw_logits():
    rng = np.random.default_rng(3)
    y_true = np.concatenate([np.arange(5), rng.integers(0, 5, 195)])
    logits = rng.normal(size=(200, 5)) + 1.5 * np.eye(5)[y_true]
    y_pred = logits.argmax(axis=1)
    one_hot = np.eye(5)[y_true]
    assert M.get_metric("accuracy")(one_hot, logits) == skm.accuracy_score(y_true, y_pred)
    assert M.get_metric("acc")(y_true, logits) == skm.accuracy_score(y_true, y_pred)
    for name, k in (("top5", 5), ("top_3_accuracy", 3), ("Top-2", 2)):
        assert M.get_metric(name)(y_true, logits) == skm.top_k_accuracy_score(y_true, logits, k=k)
    assert M.get_metric("top_k_accuracy", k=2)(y_true, logits) == skm.top_k_accuracy_score(y_true, logits, k=2)
    for average in ("macro", "micro", "weighted"):
        assert M.get_metric(f"f1_{average}")(y_true, logits) == pytest.approx(
            skm.f1_score(y_true, y_pred, average=average), rel=1e-12)
        assert M.get_metric(f"precision_{average}")(y_true, logits) == pytest.approx(
            skm.precision_score(y_true, y_pred, average=average), rel=1e-12)
    assert M.get_metric("f1")(y_true, logits) == pytest.approx(skm.f1_score(y_true, y_pred, average="macro"))
    # AUC: logits are turned into probabilities, as sklearn's multiclass AUC requires.
    for name, multi_class, average in (("roc_auc", "ovr", "macro"), ("roc_auc_ovo", "ovo", "macro"),
                                       ("roc_auc_ovr_weighted", "ovr", "weighted")):
        assert M.get_metric(name)(y_true, logits) == pytest.approx(
            skm.roc_auc_score(y_true, softmax(logits), multi_class=multi_class, average=average), rel=1e-12)


def test_registry_binary_and_regression_metrics():
    rng = np.random.default_rng(4)
    y_true = rng.integers(0, 2, 100)
    probabilities = rng.random((100, 1))
    assert M.get_metric("accuracy")(y_true, probabilities) == skm.accuracy_score(y_true, probabilities[:, 0] > 0.5)
    logits = rng.normal(size=(100, 1))
    assert M.get_metric("accuracy", threshold=0.0)(y_true, logits) == skm.accuracy_score(y_true, logits[:, 0] > 0)
    assert M.get_metric("auc")(y_true, logits) == pytest.approx(skm.roc_auc_score(y_true, logits[:, 0]))
    assert M.get_metric("f1_binary")(y_true, probabilities) == pytest.approx(
        skm.f1_score(y_true, probabilities[:, 0] > 0.5))

    targets = rng.normal(size=(100, 1))
    outputs = (targets + rng.normal(scale=0.2, size=(100, 1))).astype(np.float32)
    for name, reference, greater in (("mae", skm.mean_absolute_error, False),
                                     ("mean_squared_error", skm.mean_squared_error, False),
                                     ("rmse", skm.root_mean_squared_error, False),
                                     ("r2", skm.r2_score, True)):
        metric = M.get_metric(name)
        assert isinstance(metric(targets.ravel(), outputs), float)
        assert metric(targets.ravel(), outputs) == pytest.approx(reference(targets, outputs), rel=1e-9)
        assert metric.greater_is_better is greater and metric.name == name


def test_registry_lookup_errors_callables_and_registration():
    with pytest.raises(ValueError, match="unknown metric 'f2'.*accuracy"):
        M.get_metric("f2")
    with pytest.raises(ValueError, match="already fixes k"):
        M.get_metric("top5", k=3)

    def hits(y_true, y_out):
        return float(np.sum(np.asarray(y_true) == np.asarray(y_out)))

    wrapped = M.get_metric(hits)
    assert wrapped.name == "hits" and wrapped([1, 2], [1, 3]) == 1.0
    assert M.get_metric(wrapped) is wrapped
    M.register_metric("test_hits", hits, greater_is_better=True)
    assert M.get_metric("Test-Hits")([1, 2], [1, 2]) == 2.0
    assert "test_hits" in M.available_metrics() and "rmse" in M.available_metrics()
