"""scikit-learn estimators: :class:`MLPClassifier` and :class:`MLPRegressor`, drop-ins for scikit-learn's.

The constructor parameters and fitted attributes are scikit-learn's
(``sklearn.neural_network.MLPClassifier``); training runs on fastnn's compiled
engine. Extras: ``dropout``, ``batch_norm``, ``network=`` (a factory returning
any :class:`fastnn.Network`), ``callbacks`` (fastnn callbacks), ``backend``.

How scikit-learn's definitions map onto fastnn (checked against scikit-learn
1.9's ``_multilayer_perceptron.py``):

- sklearn's batch loss is ``data_loss + 0.5 * alpha * ||W||^2 / batch_size``
  (all weight matrices, no biases). fastnn's losses are means over outputs, and
  sklearn's are not quite: softmax-CE matches (factor 1), sklearn's BCE and
  Poisson deviance sum over the ``k`` outputs (factor ``k``) and its squared
  loss is half the MSE (reported as 0.5, but its gradient is that of half the
  *sum* over outputs: ``k/2``). With that factor ``s``, each Dense layer
  gets ``l2 = 0.5 * alpha / (s * batch_size)``, SGD's rate is
  ``s * learning_rate_init`` (Adam is invariant to the scale), and
  ``loss_curve_`` reports ``s`` times fastnn's epoch loss: the same numbers
  sklearn reports. The last, smaller batch of an epoch uses the full batch
  size's L2 coefficient (sklearn divides by the actual batch size).
- Adam: fastnn's (PyTorch's) update adds ``epsilon`` after the bias
  correction, sklearn's before it, so sklearn's effective epsilon is
  ``epsilon / sqrt(1 - beta_2**t)``; the updates agree when epsilon is
  negligible (tested with ``epsilon=1e-30``). SGD (with Nesterov momentum) is
  the same update.
- ``MLPRegressor(loss='poisson')``: sklearn's half Poisson deviance with an
  ``exp`` output, on fastnn's per-layer path (no compiled Poisson loss).
- Initialisation is sklearn's: ``U(-b, b)`` weights and biases,
  ``b = sqrt(6 / (fan_in + fan_out))`` (2 instead of 6 for ``logistic``).
- ``solver='lbfgs'`` runs scipy's L-BFGS-B on sklearn's full-batch objective
  with the loss and gradients of fastnn's layers (the per-layer path: a
  full-batch solver gains nothing from the mini-batch engine), without dropout
  or batch norm. Small data sets are what sklearn recommends it for.
- ``sample_weight``: scaled to mean 1 over the data (sklearn normalises per
  batch by the batch's weight sum; equal in expectation). Multiclass folds the
  weights into the target rows on the compiled path; binary, multilabel and
  regression targets use a weighted loss on fastnn's per-layer path. Zero
  weights or equal weights: see ``_fit`` (equal weights take the unweighted path).

Modules: :mod:`.estimators` (the two estimators and their shared base) and
:mod:`._training` (sklearn's end-of-epoch logic as a fastnn callback, the
sample-weighted loss, the L-BFGS solver).
"""
from .estimators import MLPClassifier, MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]
