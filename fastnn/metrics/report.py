"""The text classification report (precision, recall, F1 and support per class)."""

from __future__ import annotations


import numpy as np

from ._common import _label_pair, _resolve_labels
from .classification import precision_recall_f1


def classification_report(y_true, y_pred, *, labels=None, target_names=None, digits: int = 4,
                          output_dict: bool = False, zero_division: float = 0.0,
                          threshold: float = 0.5):
    """Text (or dict) summary of per-class precision, recall, F1 and support.

    Formatted like ``sklearn.metrics.classification_report``: one row per
    class, then ``accuracy`` (``micro avg`` when ``labels`` leaves classes
    out), ``macro avg`` and ``weighted avg``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,) or (n_samples, n_classes)
        True labels (or one-hot rows).
    y_pred : array-like
        Predicted labels, scores (argmax) or a probability column (threshold).
    labels : sequence of int, optional
        Classes to report. Default: the classes present in either input, or
        every class ``0 .. len(target_names)-1`` when ``target_names`` names
        more classes than are present.
    target_names : sequence of str, optional
        Display names: one per reported label, or one per class id.
    digits : int, default=4
        Decimal places in the text report (the dict is unrounded).
    output_dict : bool, default=False
        Return ``{name: {'precision', 'recall', 'f1-score', 'support'}, ...,
        'accuracy': float, 'macro avg': {...}, 'weighted avg': {...}}``.
    zero_division : {0.0, 1.0, np.nan}, default=0.0
        See :func:`precision_recall_f1`.
    threshold : float, default=0.5
        Decision threshold for a single probability column.

    Returns
    -------
    str or dict
    """
    true_labels, pred_labels = _label_pair(y_true, y_pred, threshold)
    present = np.union1d(true_labels, pred_labels)
    labels_given = labels is not None
    if target_names is not None:
        target_names = [str(name) for name in target_names]
        if not labels_given and len(target_names) != present.size:
            if present.max() >= len(target_names):
                raise ValueError(
                    f"target_names has {len(target_names)} names but the data holds "
                    f"class {int(present.max())}; give one name per class id or per label"
                )
            labels = np.arange(len(target_names))  # names indexed by class id
    label_set = _resolve_labels(true_labels, pred_labels, labels)
    if target_names is None:
        names = [str(label) for label in label_set]
    elif len(target_names) == label_set.size:
        names = target_names
    elif label_set.max() < len(target_names):
        names = [target_names[label] for label in label_set]
    else:
        raise ValueError(
            f"target_names has {len(target_names)} names for {label_set.size} labels"
        )
    micro_is_accuracy = not labels_given or bool(np.all(np.isin(present, label_set)))

    p, r, f1, support = precision_recall_f1(true_labels, pred_labels, labels=label_set,
                                            zero_division=zero_division)
    headers = ("precision", "recall", "f1-score", "support")
    rows = {name: dict(zip(headers, (float(pi), float(ri), float(fi), int(si))))
            for name, pi, ri, fi, si in zip(names, p, r, f1, support)}
    summary = {}
    total_support = int(support.sum())
    for average in ("micro", "macro", "weighted"):
        heading = "accuracy" if average == "micro" and micro_is_accuracy else f"{average} avg"
        avg_p, avg_r, avg_f1, _ = precision_recall_f1(true_labels, pred_labels, labels=label_set,
                                                      average=average, zero_division=zero_division)
        summary[heading] = dict(zip(headers, (avg_p, avg_r, avg_f1, total_support)))

    if output_dict:
        report = dict(rows)
        for heading, values in summary.items():
            report[heading] = values["precision"] if heading == "accuracy" else values
        return report

    width = max(max(len(name) for name in names), len("weighted avg"), digits)
    lines = [f"{'':>{width}s} " + "".join(f" {h:>9}" for h in headers), ""]
    def format_row(name, values):
        numbers = "".join(f" {values[h]:>9.{digits}f}" for h in headers[:3])
        return f"{name:>{width}s} {numbers} {values['support']:>9}"
    lines += [format_row(name, values) for name, values in rows.items()]
    lines.append("")
    for heading, values in summary.items():
        if heading == "accuracy":
            lines.append(f"{heading:>{width}s}  {'':>9} {'':>9} "
                         f"{values['f1-score']:>9.{digits}f} {values['support']:>9}")
        else:
            lines.append(format_row(heading, values))
    return "\n".join(lines) + "\n"
