"""Runners: what one chunk of training steps executes, on the fused plan or layer by layer.

A runner is ``run(perm, starts, batch_loss, batch_correct)``: one optimizer step
per batch start, writing each batch's mean loss and correct count. The fused
runner is one call of the backend's plan driver (``train_steps``); the
per-layer runner calls each layer's ``forward``/``backward`` (the oracle of the
fused path, and the path of user-defined layers); :func:`layerwise_grad` is its
``grad_steps`` (forward + backward without the update), which distributed
workers run on their part of a batch.
"""
import numpy as np

from ..kernels import codes


def _dropout_layers(layers):
    """The layers of ``layers`` (a Network or a list) that draw counter-based dropout masks."""
    layers = getattr(layers, "layers", layers)
    return [layer for layer in layers if hasattr(layer, "step") and hasattr(layer, "key")]


def fused_runner(kern, plan, network, loss, optimizer, X, Y, hyper):
    """One driver call per chunk: every step of the chunk in compiled code."""
    plan.bind(network, optimizer, hyper)
    dropouts = _dropout_layers(network)

    def run(perm, starts, batch_loss, batch_correct):
        opt = optimizer
        lrs = opt.learning_rates(opt.iterations, len(starts))
        kern.train_steps(plan, X, Y, perm, starts, lrs, opt.iterations, batch_loss, batch_correct)
        opt.iterations += len(starts)
        for layer in dropouts:  # a later standalone training forward continues the step count
            layer.step = opt.iterations + 1
    return run




def layerwise_grad(kern, backend, network, loss, X, Y, batch_size):
    """The per-layer path's ``grad_steps``: forward + backward of one batch into ``network.grads``, no update.

    Returns ``grad(idx, step, row0=0) -> (mean loss plus penalties, correct count)`` for the rows
    ``idx`` (at most ``batch_size``) of ``X``/``Y`` at optimizer step ``step``. ``row0`` is the
    position of ``idx[0]`` in a larger batch the rows are part of (a distributed worker's part):
    dropout masks are keyed by the row in the batch, so a part draws the masks the whole batch
    would. Each call overwrites ``network.grads`` with the mean gradient over its rows (the L1/L2
    penalty gradients added), as the fused ``grad_steps`` does; buffers are allocated once here.
    """
    net = network
    fused = loss.fused_activation
    last = net.layers[-1]
    logits = fused is not None and getattr(last, "activation", None) == fused and hasattr(last, "act_code")
    penalized = [layer for layer in net.layers if getattr(layer, "has_penalty", False)]
    dropouts = _dropout_layers(net)
    keyed_by_row = [layer for layer in dropouts if hasattr(layer, "row0")]
    Xb = np.empty((batch_size, X.shape[1]), X.dtype)
    Yb = np.empty((batch_size, Y.shape[1]), Y.dtype)
    dout_full = np.empty((batch_size, net.n_outputs), net.dtype)

    def grad(idx, step, row0=0):
        m = len(idx)
        xb, yb, dout = Xb[:m], Yb[:m], dout_full[:m]
        kern.gather_rows(X, idx, xb)
        kern.gather_rows(Y, idx, yb)
        for layer in dropouts:  # masks keyed by the optimizer step, as on the fused path
            layer.step = step
        for layer in keyed_by_row:
            if layer.row0 != row0:
                layer.row0 = row0
        A = xb
        for i, layer in enumerate(net.layers):
            if i == len(net.layers) - 1 and logits:
                A = layer.forward(A, training=True, backend=backend, logits=True)
            else:
                A = layer.forward(A, training=True, backend=backend)
        if loss.code is None:
            batch_loss = loss.forward_backward(A, yb, 1.0 / m, dout, backend=backend) / m
            batch_correct = loss.count_correct(A, yb, backend=backend)
        else:
            batch_loss = kern.loss_forward_backward(loss.code, A, yb, 1.0 / m, dout) / m
            batch_correct = kern.count_correct(loss.code, A, yb)
        dA = dout
        for i in range(len(net.layers) - 1, -1, -1):
            dA = net.layers[i].backward(dA, backend=backend, need_dX=i > 0)
        for layer in penalized:  # L1/L2 terms join the loss and its gradient, as in Keras
            batch_loss += layer.penalty()
            layer.add_penalty_gradient()
        return batch_loss, batch_correct
    return grad


def layerwise_runner(kern, backend, network, loss, optimizer, X, Y, batch_size, hyper, clip_norm, clip_value):
    """One kernel call per layer per batch, any layer type (buffers allocated once)."""
    net, opt = network, optimizer
    grad = layerwise_grad(kern, backend, net, loss, X, Y, batch_size)
    dropouts = _dropout_layers(net)

    def run(perm, starts, batch_loss, batch_correct):
        lrs = opt.learning_rates(opt.iterations, len(starts))
        for j, start in enumerate(starts):
            m = min(batch_size, len(perm) - int(start))
            batch_loss[j], batch_correct[j] = grad(perm[start:start + m], opt.iterations + 1)
            kern.clip_gradients(net.grads, clip_norm, clip_value)
            hyper[codes.H_LR] = lrs[j]
            kern.optimizer_update(opt.code, net.params, net.grads, opt.state, hyper, opt.iterations + 1)
            opt.iterations += 1
        for layer in dropouts:
            layer.step = opt.iterations + 1
    return run
