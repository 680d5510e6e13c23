"""The op spec: every kernel op, its arguments, contract, implementations and declared fallback.

One row per op. ``backends`` lists the backends that implement it in their
own family module (``fastnn/kernels/<backend>/<family>.py``); every other
backend serves the ``fallback`` backend's implementation, and says so
(:meth:`fastnn.kernels.Backend.fallbacks`, :func:`fastnn.show_config`).
``codes`` names the integer-code kind the op switches on (``"act"``,
``"loss"``, ``"opt"``; see :mod:`fastnn.kernels.codes`): an unknown code
raises ValueError on every backend. The conformance test
(``tests/kernels/test_conformance.py``) walks this table: every op on every
backend, present, with these argument names, every code, against the
reference.

Adding an op: write it in ``reference/<family>.py`` (the oracle) and in the
backends that get one, export it from each backend's ``__init__.py``, add a
row here, and a case to ``tests/kernels/test_conformance.py``.
"""
from collections import namedtuple

BACKENDS = ("reference", "numba", "cython")
ALL = BACKENDS

Op = namedtuple("Op", "name family args contract backends fallback codes")
Op.__doc__ = """One kernel op: ``name``, ``family`` (module), ``args`` (argument names, in order),
``contract`` (one line), ``backends`` (own implementations), ``fallback`` (backend whose
implementation the others use, None when all implement it), ``codes`` (code kind or None)."""


def _op(name, family, args, contract, backends=ALL, fallback=None, codes=None):
    return Op(name, family, tuple(args.split()), contract, tuple(backends), fallback, codes)


OPS = (
    _op("activation_forward", "activations", "Z act alpha A_out",
        "A = f(Z), row-wise for softmax", codes="act"),
    _op("activation_backward", "activations", "Z A dA act alpha dZ_out",
        "dZ = dA * f'(Z) (a Jacobian-vector product for softmax)", codes="act"),
    _op("dense_forward", "dense", "X W b act alpha Z_out A_out",
        "Z = X @ W + b; A = f(Z)", codes="act"),
    _op("dense_backward", "dense", "X W Z A dA act alpha dZ_buf dW_out db_out dX_out",
        "dZ = dA*f'(Z); dW = X.T @ dZ; db = sum(dZ); dX = dZ @ W.T (skipped if dX_out is None)",
        codes="act"),
    _op("dense_chain_forward", "dense", "X params layers alphas work out n_threads",
        "A = f(A @ W + b) for each (n_in, n_out, W offset, b offset, act) row of layers, A = X first; "
        "out = the last A (work: hidden activations); at most n_threads threads, each on a block of rows "
        "(cython; the others run on one)", codes="act"),
    _op("loss_forward_backward", "losses", "loss out target scale dout",
        "return the sum over rows of the per-sample loss; dout = d(scale*sum)/d(out)", codes="loss"),
    _op("count_correct", "losses", "loss out target",
        "rows whose prediction matches the target (0 for regression losses)", codes="loss"),
    _op("mae_forward_backward", "losses", "out target scale dout",
        "sum_i mean_j |out - target|; dout = sign(out - target) * scale / k"),
    _op("huber_forward_backward", "losses", "out target delta scale dout",
        "sum_i mean_j huber_delta(out - target); dout = clip(d, -delta, delta) * scale / k"),
    _op("focal_forward_backward", "losses", "out target gamma alpha scale dout",
        "sum_i -sum_j t_ij alpha_j (1-p_ij)^gamma log p_ij, p = softmax(out); dout = scale * dL/dout"),
    _op("clip_gradients", "optim", "grads clip_norm clip_value",
        "clip to +-clip_value (if > 0), then to global L2 norm clip_norm (if > 0); return the norm"),
    _op("optimizer_update", "optim", "opt params grads state hyper step",
        "one fused in-place update of the flat params (PyTorch semantics)", codes="opt"),
    _op("reduce_gradients", "optim", "shard_grads lo hi clip_value want_norm grads_out",
        "grads_out[lo:hi] = sum of the rows shard_grads[s, lo:hi] in row order, clipped to +-clip_value "
        "(if > 0); return its float64 sum of squares if want_norm, else -1 (row shards, issue 12)"),
    _op("update_span", "optim", "opt params grads state hyper step lo hi scale",
        "grads[lo:hi] *= scale (if != 1), then optimizer_update's step of params[lo:hi]", codes="opt"),
    _op("batchnorm_forward", "norm",
        "X gamma beta eps training running_mean running_var momentum Xhat_out inv_std_out out",
        "per column: Xhat = (X - mean) / sqrt(var + eps), out = gamma*Xhat + beta; running stats in training"),
    _op("batchnorm_backward", "norm", "dout Xhat inv_std gamma dgamma_out dbeta_out dX_out",
        "dbeta = sum dout, dgamma = sum dout*Xhat, dX = gamma*inv_std/n*(n*dout - dbeta - Xhat*dgamma)"),
    _op("layernorm_forward", "norm", "X gamma beta eps Xhat_out inv_std_out out",
        "per row: Xhat = (x - mean) / sqrt(var + eps), out = gamma*Xhat + beta"),
    _op("layernorm_backward", "norm", "dout Xhat inv_std gamma dgamma_out dbeta_out dX_out",
        "dbeta, dgamma as batch norm; per row dX = inv_std/k*(k*g - sum g - Xhat*sum g*Xhat), g = dout*gamma"),
    _op("layernorm_rows_forward", "norm", "X gamma beta eps mean_out inv_std_out out",
        "layernorm_forward keeping each row's float64 mean and inv_std instead of Xhat (the plan rows)"),
    _op("layernorm_rows_backward", "norm", "dout X mean inv_std gamma dgamma_out dbeta_out dX_out",
        "layernorm_backward with Xhat = (X - mean) * inv_std recomputed per row"),
    _op("image_shift", "image", "src dst dy dx H W fill",
        "dst[i] = src[i] moved down dy[i], right dx[i] whole pixels; uncovered pixels = fill",
        backends=("reference", "numba"), fallback="numba"),
    _op("image_rotate", "image", "src dst codes maps scratch",
        "dst[i] = bilinear map maps[codes[i]] of src[i] (see fastnn.data.augment._RotationMaps)",
        backends=("reference", "numba"), fallback="numba"),
    # --- sequence models (issue 12): recurrent cells, time-major (T, n, .) arrays ---------------
    _op("simple_rnn_forward", "rnn", "X W U b mask H_out scratch",
        "H_t = tanh(X_t W + H_{t-1} U + b), input projection of all steps as one GEMM; padded steps "
        "(mask 0) keep the state"),
    _op("simple_rnn_backward", "rnn", "X W U H dH mask dW_out dU_out db_out dX_out dZ_buf dh_buf",
        "BPTT of simple_rnn_forward (dX skipped if dX_out is None)"),
    _op("lstm_forward", "rnn", "X W U b mask H_out C_out G_out scratch",
        "LSTM (gates i f g o) over every step; G_out keeps the activated gates"),
    _op("lstm_backward", "rnn", "X W U H C G dH mask dW_out dU_out db_out dX_out dG_buf dh_buf dc_buf",
        "BPTT of lstm_forward (dX skipped if dX_out is None)"),
    _op("lstm_infer", "rnn", "X W U b mask H_out C_buf G_buf",
        "lstm_forward for predict, keeping only h and c: H_out (T, n, H) every step's h or (1, n, H) "
        "the last; C_buf ends as the last c; G_buf (2, n, 4H) scratch"),
    _op("simple_rnn_infer", "rnn", "X W U b mask H_out G_buf",
        "simple_rnn_forward for predict, keeping only h: H_out (T, n, H) every step's h or (1, n, H) the last; "
        "G_buf (2, n, H) scratch"),
    _op("gru_forward", "rnn", "X W U b b_h reset_after mask H_out G_out HH_out scratch",
        "GRU (gates z r h, Keras reset_after) over every step; G_out keeps z r n"),
    _op("gru_infer", "rnn", "X W U b b_h reset_after mask H_out G_buf",
        "gru_forward for predict, keeping only h: H_out (T, n, H) every step's h or (1, n, H) the last; "
        "G_buf (2, n, 3H) scratch"),
    _op("gru_backward", "rnn",
        "X W U H G HH dH reset_after mask dW_out dU_out db_out db_h_out dX_out dGx_buf dGh_buf dh_buf",
        "BPTT of gru_forward (dX skipped if dX_out is None)"),
    _op("embedding_forward", "embedding", "ids E out", "out[i] = E[ids[i]] (ids validated by the layer)"),
    _op("embedding_backward", "embedding", "ids dout dE_out", "dE = 0; dE[ids[i]] += dout[i], in row order"),
    _op("attention_forward", "attention", "QKV n_heads causal key_mask P_out O_out",
        "per head P = softmax(q k.T / sqrt(dk)) (stable; causal: no look-ahead; padded keys weigh 0), O = P v"),
    _op("attention_backward", "attention", "QKV P dO n_heads causal dS_buf dQKV_out",
        "gradients of attention_forward w.r.t. q, k, v into dQKV_out"),
    # --- end of sequence models -------------------------------------------------------------
    _op("gather_rows", "driver", "X idx out", "out[i] = X[idx[i]]"),
    _op("dropout_forward", "plan", "X key step row0 rate mask_out out",
        "mask = (16-bit counter-hash draw of (key, step, row0+i, j) < keep) / keep; out = X * mask"),
    _op("train_steps", "plan", "plan X Y perm batch_starts lrs step0 batch_loss batch_correct",
        "one optimizer step per batch start through every row of a compiled plan (fastnn.engine.plan)",
        codes="act opt"),
    _op("grad_steps", "plan", "plan X Y perm batch_starts step0 batch_loss batch_correct",
        "forward + backward of each batch into plan.grads (their sum), no update"),
    _op("apply_update", "plan", "plan lr step", "clip plan.grads as plan.hyper says, then one optimizer step"),
    # --- convolutional networks (issue 11): NHWC images, (ph, pw) = top/left padding, output size from the out shape
    _op("im2col", "conv", "X kh kw sh sw ph pw cols_out",
        "cols[n, ho, wo, (i*kw + j)*C + c] = X[n, ho*sh - ph + i, wo*sw - pw + j, c], 0 in the padding"),
    _op("col2im", "conv", "cols kh kw sh sw ph pw dX_out",
        "dX = the adjoint of im2col: each patch entry's gradient summed at the input it came from"),
    _op("conv1ch_forward", "conv", "X W b sh ph pw relu Z_out A_out",
        "one-channel X (n, H, W, 1), W (kh, kw, 1, F), stride (sh, 1): Z = cross-correlation + b (None: none); "
        "A = max(Z, 0) if relu else Z (A_out None: not written)", backends=("reference", "cython"),
        fallback="reference"),
    _op("conv1ch_weight_grad", "conv", "X dZ sh ph pw dW_out",
        "dW[i, j, 0, f] = sum over n, ho, wo of X[n, ho*sh - ph + i, wo - pw + j, 0] * dZ[n, ho, wo, f]",
        backends=("reference", "cython"), fallback="reference"),
    _op("maxpool_forward", "pool", "X kh kw sh sw ph pw out argmax_out",
        "out = max of each window (padding ignored); argmax_out = flat h*W + w of the first maximum (int64)"),
    _op("maxpool_backward", "pool", "dout argmax dX_out",
        "dX = 0, then dX[n, argmax // W, argmax % W, c] += dout[n, ho, wo, c]"),
    _op("avgpool_forward", "pool", "X kh kw sh sw ph pw out",
        "out = mean of each window over its valid (non-padding) entries"),
    _op("avgpool_backward", "pool", "dout kh kw sh sw ph pw dX_out",
        "dX = sum over the windows holding each input of dout / (valid entries of that window)"),
)

#: name -> Op
BY_NAME = {op.name: op for op in OPS}
#: the families, in the order of the spec (the same file names in every backend)
FAMILIES = tuple(dict.fromkeys(op.family for op in OPS))


def source(op, backend):
    """The backend whose implementation ``backend`` uses for ``op`` (itself or the declared fallback)."""
    return backend if backend in op.backends else op.fallback


def declared_fallbacks(backend):
    """``{op name: fallback backend}`` for the ops ``backend`` does not implement itself."""
    return {op.name: op.fallback for op in OPS if backend not in op.backends}
