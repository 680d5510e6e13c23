"""Runners: what one chunk of training steps executes, on the fused plan or layer by layer.

A runner is ``run(perm, starts, batch_loss, batch_correct)``: one optimizer step
per batch start, writing each batch's mean loss and correct count. The fused
runner is one call of the backend's plan driver (``train_steps``); the
per-layer runner calls each layer's ``forward``/``backward`` (the oracle of the
fused path, and the path of user-defined layers).
"""
import numpy as np

from ..kernels import codes


def _dropout_layers(network):
    return [layer for layer in network.layers if hasattr(layer, "step") and hasattr(layer, "key")]


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


def uses_logits(network, loss):
    """True when the loss applies the last layer's activation itself (the last forward returns logits)."""
    fused = loss.fused_activation
    last = network.layers[-1]
    return fused is not None and getattr(last, "activation", None) == fused and hasattr(last, "act_code")


def layerwise_gradient(kern, backend, network, loss, xb, yb, dout, logits, penalized):
    """Forward, loss and backward of one batch layer by layer: its gradient into ``network.grads``.

    ``dout`` is a caller-owned ``(m, n_outputs)`` buffer; ``penalized`` the layers with L1/L2 terms
    (they join the loss and its gradient, as in Keras). Returns ``(mean loss, correct count)``.
    """
    m = len(xb)
    A = xb
    last = len(network.layers) - 1
    for i, layer in enumerate(network.layers):
        if i == last and logits:
            A = layer.forward(A, training=True, backend=backend, logits=True)
        else:
            A = layer.forward(A, training=True, backend=backend)
    if loss.code is None:
        batch_loss = loss.forward_backward(A, yb, 1.0 / m, dout, backend=backend) / m
        correct = loss.count_correct(A, yb, backend=backend)
    else:
        batch_loss = kern.loss_forward_backward(loss.code, A, yb, 1.0 / m, dout) / m
        correct = kern.count_correct(loss.code, A, yb)
    dA = dout
    for i in range(last, -1, -1):
        dA = network.layers[i].backward(dA, backend=backend, need_dX=i > 0)
    for layer in penalized:
        batch_loss += layer.penalty()
        layer.add_penalty_gradient()
    return batch_loss, correct


def penalized_layers(network):
    """The layers whose L1/L2 penalty joins the loss."""
    return [layer for layer in network.layers if getattr(layer, "has_penalty", False)]


def layerwise_runner(kern, backend, network, loss, optimizer, X, Y, batch_size, hyper, clip_norm, clip_value):
    """One kernel call per layer per batch, any layer type (buffers allocated once)."""
    net, opt = network, optimizer
    logits = uses_logits(net, loss)
    penalized = penalized_layers(net)
    dropouts = _dropout_layers(net)
    Xb = np.empty((batch_size, X.shape[1]), X.dtype)
    Yb = np.empty((batch_size, Y.shape[1]), Y.dtype)
    dout_full = np.empty((batch_size, net.n_outputs), net.dtype)

    def run(perm, starts, batch_loss, batch_correct):
        lrs = opt.learning_rates(opt.iterations, len(starts))
        for j, start in enumerate(starts):
            m = min(batch_size, len(perm) - int(start))
            idx = perm[start:start + m]
            xb, yb, dout = Xb[:m], Yb[:m], dout_full[:m]
            kern.gather_rows(X, idx, xb)
            kern.gather_rows(Y, idx, yb)
            for layer in dropouts:  # masks keyed by the optimizer step, as on the fused path
                layer.step = opt.iterations + 1
            batch_loss[j], batch_correct[j] = layerwise_gradient(kern, backend, net, loss, xb, yb, dout,
                                                                 logits, penalized)
            kern.clip_gradients(net.grads, clip_norm, clip_value)
            hyper[codes.H_LR] = lrs[j]
            kern.optimizer_update(opt.code, net.params, net.grads, opt.state, hyper, opt.iterations + 1)
            opt.iterations += 1
        for layer in dropouts:
            layer.step = opt.iterations + 1
    return run
