"""The estimators: :class:`MLPClassifier`, :class:`MLPRegressor` and their shared base (see the package docstring)."""
import numbers
import warnings

import numpy as np
import sklearn
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, column_or_1d

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6
    raise ImportError(f"fastnn.sklearn needs scikit-learn >= 1.6 (validate_data, __sklearn_tags__); "
                      f"found {sklearn.__version__}: pip install -U scikit-learn") from None

from ...errors import NonFiniteError
from ...layers import BatchNorm, Dense, Dropout
from ...losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError, soft_targets
from ...network import Network
from ...optimizers import SGD, Adam
from ...trainer import Trainer
from ._training import EpochControl, SklearnShuffle, WeightedLoss, fit_lbfgs

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_DTYPES = (np.float64, np.float32)


def _stochastic_solver(est):
    """partial_fit exists only for 'adam' and 'sgd' (``hasattr(est, 'partial_fit')`` is False for 'lbfgs')."""
    if est.solver not in ("adam", "sgd"):
        raise AttributeError(f"partial_fit is only available for stochastic optimizers ('adam', 'sgd'); "
                             f"solver={est.solver!r} is not stochastic")
    return True


class _BaseMLP(BaseEstimator):
    """Shared fitting machinery of the two estimators (not public)."""

    _parameter_constraints = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "solver": [StrOptions({"adam", "sgd", "lbfgs"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(numbers.Real, 0, None, closed="neither")],
        "power_t": [Interval(numbers.Real, 0, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        # fastnn's SGD needs momentum < 1 (sklearn allows 1, which never decays the velocity)
        "momentum": [Interval(numbers.Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_1": [Interval(numbers.Real, 0, 1, closed="left")],
        "beta_2": [Interval(numbers.Real, 0, 1, closed="left")],
        "epsilon": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left"), Options(numbers.Real, {np.inf})],
        "max_fun": [Interval(numbers.Integral, 1, None, closed="left")],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "network": [callable, None],
        "callbacks": [list, None],
        "backend": [StrOptions({"reference", "numba", "cython"}), None],
    }

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, batch_norm=False, network=None,
                 callbacks=None, backend=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.network = network
        self.callbacks = callbacks
        self.backend = backend

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # fastnn trains on dense rows
        return tags

    # ------------------------------------------------------------------ building
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(f"hidden_layer_sizes must hold positive integers, got {self.hidden_layer_sizes!r}")
        return [int(s) for s in sizes]

    def _build_network(self, n_features, n_outputs, dtype, rs):
        if self.network is not None:
            net = self.network(n_features, n_outputs)
            if not isinstance(net, Network):
                raise TypeError(f"network must be a callable (n_features, n_outputs) -> fastnn.Network, "
                                f"it returned {type(net).__name__}")
            if net.n_inputs != n_features or net.n_outputs != n_outputs:
                raise ValueError(f"network(n_features={n_features}, n_outputs={n_outputs}) returned a Network with "
                                 f"{net.n_inputs} inputs and {net.n_outputs} outputs")
            if net.dtype != dtype:
                raise ValueError(f"network returned a {net.dtype} Network but X is {np.dtype(dtype)}: give the "
                                 f"Network dtype=X.dtype, or pass X as {net.dtype}")
            if getattr(net.layers[-1], "activation", "linear") != "linear":
                raise ValueError("the network's last layer must give logits (no activation): the estimator applies "
                                 "softmax/sigmoid itself")
            return net
        # sklearn's Glorot-uniform initialisation, biases included, drawn first and in sklearn's order
        # (W then b, layer by layer), so a random_state gives sklearn's initial weights.
        sizes = [n_features] + self._hidden_sizes() + [n_outputs]
        factor = 2.0 if self.activation == "logistic" else 6.0
        init = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = np.sqrt(factor / (fan_in + fan_out))
            init.append((rs.uniform(-bound, bound, (fan_in, fan_out)), rs.uniform(-bound, bound, fan_out)))
        act = _ACTIVATIONS[self.activation]
        layers = []
        for units in sizes[1:-1]:
            layers.append(Dense(units, activation=act))
            if self.batch_norm:
                layers.append(BatchNorm())
            if self.dropout:
                layers.append(Dropout(self.dropout))
        layers.append(Dense(n_outputs))
        # dropout masks: a draw only when there is dropout, so the stream stays sklearn's otherwise
        seed = int(rs.randint(np.iinfo(np.int32).max)) if self.dropout else 0
        net = Network(layers, input_shape=(n_features,), seed=seed, dtype=dtype, backend=self.backend)
        for layer, (W, b) in zip([lay for lay in net.layers if isinstance(lay, Dense)], init):
            layer.params["W"][...] = W
            layer.params["b"][...] = b
        return net

    def _make_optimizer(self, lr_scale):
        if self.solver == "adam":
            return Adam(self.learning_rate_init, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)
        return SGD(self.learning_rate_init * lr_scale, momentum=self.momentum,
                   nesterov=bool(self.nesterovs_momentum and self.momentum > 0))

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, y, sample_weight=None, incremental=False, classes=None):
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        self._hidden_sizes()  # validate before touching anything
        first_pass = not hasattr(self, "network_") or (not self.warm_start and not incremental)
        X, y = self._validate_xy(X, y, reset=first_pass)
        if not first_pass:
            X = X.astype(self.network_.dtype, copy=False)
        n_samples = X.shape[0]
        weight_sum = float(n_samples)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            total = weight_sum = float(sample_weight.sum())
            if not total > 0:
                raise ValueError("sample_weight sums to 0: at least one sample needs a positive weight")
            sample_weight = sample_weight * (n_samples / total)
            if np.all(sample_weight == 1.0):
                sample_weight = None  # equal weights: the unweighted (compiled) path, bit for bit
        Y = self._encode_targets(y, first_pass, classes)  # sets classes_ / n_outputs_ on the first pass
        rs = check_random_state(self.random_state)
        if first_pass:
            self.network_ = self._build_network(X.shape[1], self.n_outputs_, X.dtype, rs)
            self.loss_curve_ = []
            self._no_improvement_count = 0
            self.t_ = 0
            self._lr = float(self.learning_rate_init)
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
            self._trainer = None

        # early stopping: sklearn's split (stratified for single-output classification)
        val = None
        idx_train = np.arange(n_samples)
        if self.early_stopping and self.solver != "lbfgs":  # lbfgs ignores it, as sklearn's
            stratify = y if (isinstance(self, ClassifierMixin) and self.n_outputs_ == 1) else None
            idx_train, idx_val = train_test_split(idx_train, random_state=rs, test_size=self.validation_fraction,
                                                  stratify=stratify)
            if idx_val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction' or the size of "
                                 "your dataset.")
            val = (X[idx_val], y[idx_val], None if sample_weight is None else sample_weight[idx_val])
        n_train = idx_train.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
            batch_size = int(np.clip(self.batch_size, 1, n_train))

        loss, Y = self._loss_and_targets(Y, sample_weight, X.dtype)
        s = self._loss_scale
        if self.solver == "lbfgs":
            fit_lbfgs(self, X, Y, loss, weight_sum)
            self._set_fitted_weights()
            return self
        lr_scale = s if self.solver == "sgd" else 1.0
        l2 = 0.5 * self.alpha / (s * batch_size)
        for layer in self.network_.layers:
            if isinstance(layer, Dense) and self.network is None:
                layer.l2 = l2
        if self._trainer is None:
            self._trainer = Trainer(self.network_, loss=loss, optimizer=self._make_optimizer(lr_scale),
                                    batch_size=batch_size, verbose=0, backend=self.backend)
        trainer = self._trainer
        trainer.loss = loss
        if self.solver == "sgd":
            trainer.optimizer.lr = self._lr * lr_scale
        X_train, Y_train = (X, Y) if val is None else (X[idx_train], Y[idx_train])
        control = EpochControl(self, n_train, val, incremental, lr_scale)
        self.n_iter_ = 0
        self._stopped = False
        self._best_state = None
        epochs = 1 if incremental else self.max_iter
        trainer.rng = SklearnShuffle(rs, n_train)  # sklearn's epoch orders from the same RandomState
        try:
            trainer.fit(X_train, Y_train, epochs=epochs, batch_size=batch_size, shuffle=self.shuffle,
                        callbacks=[control] + list(self.callbacks or []), verbose=0)
        except NonFiniteError as exc:
            raise ValueError(f"Solver produced non-finite parameter weights ({exc}). The input data may contain "
                             f"large values and need to be preprocessed.") from None
        if self.early_stopping and self._best_state is not None:
            self.network_.params[...] = self._best_state[0]
            self.network_.buffers[...] = self._best_state[1]
        self._best_state = None
        if not incremental and not self._stopped and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the optimization "
                          f"hasn't converged yet.", ConvergenceWarning)
        self._set_fitted_weights()
        return self

    def _set_fitted_weights(self):
        dense = [layer for layer in self.network_.layers if isinstance(layer, Dense)]
        self.coefs_ = [layer.params["W"].copy() for layer in dense]
        self.intercepts_ = [layer.params["b"].copy() for layer in dense]
        self.n_layers_ = len(dense) + 1

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, multi_output=True, dtype=_DTYPES, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _loss_and_targets(self, Y, sample_weight, dtype):
        """The fastnn loss and training targets for encoded targets ``Y`` (sets ``_loss_scale``)."""
        kind = self._loss_kind
        # sklearn's squared-error gradient is that of 0.5 * sum over outputs (its reported loss is the mean):
        # the training scale is k/2, the reported one 1/2 (see _EpochControl).
        self._loss_scale = {"ce": 1.0, "bce": float(self.n_outputs_), "poisson": float(self.n_outputs_),
                            "mse": 0.5 * self.n_outputs_}[kind]
        if kind == "ce":
            if sample_weight is None:
                return CrossEntropy(), Y
            return CrossEntropy(), soft_targets(Y, self.n_outputs_, sample_weight=sample_weight, dtype=dtype)
        if kind == "poisson" and sample_weight is None:
            sample_weight = np.ones(Y.shape[0])
        if sample_weight is None:
            return (BinaryCrossEntropy() if kind == "bce" else MeanSquaredError()), Y
        return WeightedLoss(kind), np.hstack([Y, sample_weight[:, None]])

    def _outputs(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_DTYPES, reset=False)
        return self.network_.forward(X.astype(self.network_.dtype, copy=False))

    def __getstate__(self):
        state = super().__getstate__()
        trainer = state.get("_trainer")
        if trainer is not None:  # the last fit's compiled plan and work buffers are rebuilt by the next fit
            trainer = object.__new__(Trainer)
            trainer.__dict__.update({k: v for k, v in state["_trainer"].__dict__.items()
                                     if k not in ("plan", "last_plan", "history")})
            trainer.plan = trainer.last_plan = None
            state["_trainer"] = trainer
        return state


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier on fastnn's compiled engine; a drop-in for scikit-learn's.

    Parameters are scikit-learn's ``MLPClassifier`` parameters (``solver`` is
    'adam', 'sgd' or 'lbfgs') plus fastnn's extras below. Binary and
    multilabel targets use sigmoid outputs with binary cross-entropy, several
    classes a softmax with cross-entropy, as scikit-learn.

    Parameters
    ----------
    hidden_layer_sizes : array-like of int, default (100,)
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default 'relu'
    solver : {'adam', 'sgd', 'lbfgs'}, default 'adam'
    alpha : float, default 1e-4
        L2 penalty ``0.5 * alpha * ||W||^2 / batch_size`` per batch, as scikit-learn.
    batch_size, learning_rate, learning_rate_init, power_t, max_iter, shuffle, random_state, tol,
    verbose, warm_start, momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1,
    beta_2, epsilon, n_iter_no_change, max_fun
        As in scikit-learn (``max_fun`` is accepted for L-BFGS compatibility and unused).
    dropout : float in [0, 1), default 0
        fastnn extra: a ``Dropout`` after every hidden layer.
    batch_norm : bool, default False
        fastnn extra: a ``BatchNorm`` after every hidden layer.
    network : callable, optional
        fastnn extra: ``network(n_features, n_outputs) -> fastnn.Network`` replaces the MLP; its last
        layer must give logits. ``hidden_layer_sizes``, ``activation``, ``dropout``, ``batch_norm``
        and ``alpha`` then do not apply.
    callbacks : list of fastnn.Callback, optional
        fastnn extra: passed to every ``Trainer.fit``.
    backend : {'reference', 'numba', 'cython'}, optional
        fastnn extra: kernel backend; default the fastest available.

    Attributes
    ----------
    classes_, coefs_, intercepts_, loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, t_, n_iter_, n_layers_, n_outputs_, out_activation_,
    n_features_in_, feature_names_in_
        As in scikit-learn (``coefs_``/``intercepts_`` are copies of the Dense layers' parameters).
    network_ : fastnn.Network
        The trained network (``network_.save(path)``, ``fastnn.export_onnx(network_, path)``).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    def _encode_targets(self, y, first_pass, classes):
        if first_pass and classes is None:
            check_classification_targets(y)
            lb = LabelBinarizer().fit(y)
            if len(lb.classes_) < 2:
                raise ValueError(f"MLPClassifier needs samples of at least 2 classes; got 1 class "
                                 f"({lb.classes_[0]!r})")
            self._label_binarizer = lb
            self.classes_ = lb.classes_
        elif classes is not None:  # partial_fit's first call
            check_classification_targets(y)
            lb = LabelBinarizer()
            lb.fit(y if type_of_target(y).startswith("multilabel") else classes)
            self._label_binarizer = lb
            self.classes_ = lb.classes_
        else:
            check_classification_targets(y)
            lb = self._label_binarizer
            if lb.y_type_.startswith("multilabel"):
                if not type_of_target(y).startswith("multilabel") or y.shape[1] != len(self.classes_):
                    raise ValueError(f"y must be a label indicator matrix with {len(self.classes_)} columns, "
                                     f"as in the first fit")
            else:
                unseen = np.setdiff1d(np.unique(y), self.classes_)
                if unseen.size:
                    raise ValueError(f"y has labels not in classes_ {list(self.classes_)}: {list(unseen)}")
        if lb.y_type_.startswith("multilabel"):
            self._loss_kind, self.out_activation_ = "bce", "logistic"
            Y = lb.transform(y).astype(np.float64)
        elif len(self.classes_) == 2:
            self._loss_kind, self.out_activation_ = "bce", "logistic"
            Y = (y == self.classes_[1]).astype(np.float64).reshape(-1, 1)
        else:
            self._loss_kind, self.out_activation_ = "ce", "softmax"
            Y = np.searchsorted(self.classes_, y).astype(np.float64)
        self.n_outputs_ = len(self.classes_) if self._loss_kind == "ce" or lb.y_type_.startswith("multilabel") \
            else 1
        return Y

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X``, ``y`` (labels of any type, or a label indicator matrix).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight)

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over ``X``, ``y``; ``classes`` (all labels) is required on the first call.

        Returns
        -------
        self
        """
        self._validate_params()
        first = _check_partial_fit_first_call(self, classes)
        if first:
            for attr in ("network_", "_trainer"):
                self.__dict__.pop(attr, None)
        return self._fit(X, y, sample_weight=sample_weight, incremental=True,
                         classes=self.classes_ if first else None)

    def _proba(self, X):
        out = self._outputs(X).astype(np.float64)
        return softmax(out, axis=1) if self._loss_kind == "ce" else expit(out)

    def predict(self, X):
        """Predicted labels (a label indicator matrix for multilabel targets)."""
        p = self._proba(X)
        if self._loss_kind == "ce":
            return self.classes_[p.argmax(axis=1)]
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return (p > 0.5).astype(int)
        return self.classes_[(p[:, 0] > 0.5).astype(int)]

    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes) (for binary: ``[1 - p, p]``)."""
        p = self._proba(X)
        if self.n_outputs_ == 1:
            return np.hstack([1 - p, p])
        return p

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor on fastnn's compiled engine; a drop-in for scikit-learn's.

    Parameters and attributes as :class:`MLPClassifier` (without ``classes_``), and:

    Parameters
    ----------
    loss : {'squared_error', 'poisson'}, default 'squared_error'
        sklearn's half squared error (identity output, on the compiled path), or its half
        Poisson deviance with an ``exp`` output (non-negative targets; fastnn's per-layer path).
    """

    _parameter_constraints = {**_BaseMLP._parameter_constraints,
                              "loss": [StrOptions({"squared_error", "poisson"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1, beta_1=0.9,
                 beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000, dropout=0.0, batch_norm=False,
                 network=None, callbacks=None, backend=None):
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose, warm_start=warm_start,
            momentum=momentum, nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            n_iter_no_change=n_iter_no_change, max_fun=max_fun, dropout=dropout, batch_norm=batch_norm,
            network=network, callbacks=callbacks, backend=backend)
        self.loss = loss

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _encode_targets(self, y, first_pass, classes):
        Y = np.asarray(y, dtype=np.float64)
        Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
        if first_pass:
            self.n_outputs_ = Y.shape[1]
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} targets per sample, the fitted model {self.n_outputs_}")
        if self.loss == "poisson":
            if (Y < 0).any():
                raise ValueError("loss='poisson' requires non-negative y")
            self._loss_kind, self.out_activation_ = "poisson", "exp"
        else:
            self._loss_kind, self.out_activation_ = "mse", "identity"
        return Y

    def _validate_xy(self, X, y, reset):
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=_DTYPES, reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X``, ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight)

    @available_if(_stochastic_solver)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over ``X``, ``y``.

        Returns
        -------
        self
        """
        self._validate_params()
        return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """Predicted values, shape (n_samples,) or (n_samples, n_outputs)."""
        out = self._outputs(X).astype(np.float64)
        if self._loss_kind == "poisson":
            out = np.exp(out)
        return out.ravel() if self.n_outputs_ == 1 else out
