"""Converters of the recurrent layers: SimpleRNN, LSTM, GRU and Bidirectional.

One computation, two forms:

- float32 without a padding mask: ONNX's own ``RNN`` / ``LSTM`` / ``GRU`` ops
  (what runtimes optimise), ``layout=0`` (time-major: the ``(N, T, F)`` sequences
  are transposed in); weights ``W (dirs, G*H, F)``, ``R (dirs, G*H, H)``,
  ``B = [Wb, Rb]``; LSTM gates in ONNX's ``i, o, f, c`` order (fastnn: ``i, f, c, o``),
  GRU ``z, r, h`` as fastnn with ``linear_before_reset`` = fastnn's ``reset_after``.
- with a padding mask, or in float64: a ``Scan`` over the steps whose body is
  fastnn's cell. fastnn (as Keras) keeps the state at a padded step wherever it
  is; the ops' ``sequence_lens`` can only say "padding at the end" (and zeroes
  the outputs there), and onnxruntime runs its recurrent ops in float32 only.

Both directions of a Bidirectional run in one op (``direction="bidirectional"``) or
as two Scans (the backward one with reversed scan directions); each returns its
states in the original time order, as fastnn's Bidirectional does.
"""
import numpy as np

from ...layers import GRU, LSTM, Bidirectional, SimpleRNN
from ._graph import GraphBuilder, register_converter

_OPS = {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}
#: fastnn's LSTM blocks i, f, c, o taken in ONNX's order i, o, f, c
_LSTM_TO_ONNX = (0, 3, 1, 2)


def _onnx_gates(layer, M):
    """fastnn's side-by-side gate blocks of ``M (rows, G*H)`` (or a bias ``(G*H,)``) in ONNX's layout."""
    if isinstance(layer, LSTM):
        H = layer.units
        M = np.concatenate([M[..., j * H:(j + 1) * H] for j in _LSTM_TO_ONNX], axis=-1)
    return M.T


def _op_weights(layer):
    """``W (G*H, F)``, ``R (G*H, H)``, ``B (2*G*H,)`` of one direction of an ONNX recurrent op."""
    p = layer.params
    b = p["b"]
    if isinstance(layer, GRU) and layer.reset_after:
        Wb, Rb = b[0], b[1]
    else:  # one bias: fastnn adds it with the input projection
        Wb, Rb = b, np.zeros_like(b)
    return (_onnx_gates(layer, p["W"]), _onnx_gates(layer, p["U"]),
            np.concatenate([_onnx_gates(layer, Wb), _onnx_gates(layer, Rb)]))


def _recurrent_op(g, layers, x):
    """``layers`` (one per direction) as one ONNX RNN/LSTM/GRU node."""
    first = layers[0]
    H, T, dirs = first.units, first.timesteps, len(layers)
    W, R, B = (np.stack(ws) for ws in zip(*(_op_weights(layer) for layer in layers)))
    attributes = {"hidden_size": H, "direction": "forward" if dirs == 1 else "bidirectional", "layout": 0}
    if isinstance(first, GRU):
        attributes["linear_before_reset"] = int(first.reset_after)
    xt = g.node("Transpose", [x], perm=[1, 0, 2], hint="time_major")
    Y, Y_h = g.node_outputs(_OPS[type(first)], [xt, g.initializer(W, "W"), g.initializer(R, "R"),
                                                g.initializer(B, "B")], 2, hint="Y", **attributes)
    if first.return_sequences:  # Y (T, dirs, N, H) -> (N, T, dirs*H): forward, then backward, per step
        return g.reshape(g.node("Transpose", [Y], perm=[2, 0, 1, 3]), [-1, T, dirs * H], hint="states")
    return g.reshape(g.node("Transpose", [Y_h], perm=[1, 0, 2]), [-1, dirs * H], hint="last_state")


# ------------------------------------------------------------------------------ the cells as Scan bodies
def _simple_rnn_cell(layer, b, states, xw):
    (h,) = states
    return [b.node("Tanh", [b.node("Add", [xw, b.node("MatMul", [h, b.initializer(layer.params["U"], "U")])])],
                   hint="h_new")]


def _lstm_cell(layer, b, states, xw):
    h, c = states
    a = b.node("Add", [xw, b.node("MatMul", [h, b.initializer(layer.params["U"], "U")])], hint="gates")
    i, f, cand, o = b.node_outputs("Split", [a], 4, hint="gate", axis=1)
    i, f, o = (b.node("Sigmoid", [t]) for t in (i, f, o))
    c_new = b.node("Add", [b.node("Mul", [f, c]), b.node("Mul", [i, b.node("Tanh", [cand])])], hint="c_new")
    return [b.node("Mul", [o, b.node("Tanh", [c_new])], hint="h_new"), c_new]


def _gru_cell(layer, b, states, xw):
    (h,) = states
    U, H = layer.params["U"], layer.units
    xz, xr, xh = b.node_outputs("Split", [xw], 3, hint="x_gate", axis=1)
    if layer.reset_after:  # n = tanh(x W_h + b_h + r * (h U_h + bh_h))
        s = b.node("Add", [b.node("MatMul", [h, b.initializer(U, "U")]), b.initializer(layer.params["b"][1], "b_h")])
        sz, sr, sh = b.node_outputs("Split", [s], 3, hint="h_gate", axis=1)
        z, r = b.node("Sigmoid", [b.node("Add", [xz, sz])]), b.node("Sigmoid", [b.node("Add", [xr, sr])])
        recurrent = b.node("Mul", [r, sh])
    else:  # n = tanh(x W_h + b_h + (r * h) U_h)
        sz, sr = b.node_outputs("Split", [b.node("MatMul", [h, b.initializer(U[:, :2 * H], "U_zr")])], 2,
                                hint="h_gate", axis=1)
        z, r = b.node("Sigmoid", [b.node("Add", [xz, sz])]), b.node("Sigmoid", [b.node("Add", [xr, sr])])
        recurrent = b.node("MatMul", [b.node("Mul", [r, h]), b.initializer(U[:, 2 * H:], "U_h")])
    n = b.node("Tanh", [b.node("Add", [xh, recurrent])])
    keep = b.node("Mul", [z, h])
    return [b.node("Add", [keep, b.node("Mul", [b.node("Sub", [b.constant(1.0, "one"), z]), n])], hint="h_new")]


_CELLS = {SimpleRNN: _simple_rnn_cell, LSTM: _lstm_cell, GRU: _gru_cell}


def _scan(g, layer, x, keep, reverse):
    """One direction as a Scan over the steps of ``x (N, T, F)``; returns (states (N, T, H), last state (N, H)).
    ``keep (N, T, 1)`` booleans (or None): a padded step keeps the state, as fastnn's kernels."""
    H, G = layer.units, layer.n_gates * layer.units
    b_in = layer.params["b"][0] if isinstance(layer, GRU) and layer.reset_after else layer.params["b"]
    # the input projection of every step at once (one MatMul), as fastnn's kernels
    xw = g.node("Add", [g.node("MatMul", [x, g.initializer(layer.params["W"], "W")]), g.initializer(b_in, "b")],
                hint="xw")
    batch = g.node("Shape", [x], start=0, end=1, hint="batch")
    zeros = g.node("ConstantOfShape", [g.node("Concat", [batch, g.ints([H], "units")], axis=0)], hint="state0",
                   value=g.helper.make_tensor("zero", g.elem, [1], [0]))
    body = GraphBuilder(g.dtype, parent=g)
    states = [body.name("h")] + ([body.name("c")] if isinstance(layer, LSTM) else [])
    xw_t = body.name("xw_t")
    new = _CELLS[type(layer)](layer, body, states, xw_t)
    scan_inputs = [xw]
    body_inputs = [body.value_info(s, ["N", H]) for s in states] + [body.value_info(xw_t, ["N", G])]
    if keep is not None:
        keep_t = body.name("keep_t")
        new = [body.node("Where", [keep_t, s_new, s], hint="kept") for s_new, s in zip(new, states)]
        scan_inputs.append(keep)
        body_inputs.append(body.value_info(keep_t, ["N", 1], g.onnx.TensorProto.BOOL))
    out = body.node("Identity", [new[0]], hint="h_t")
    graph = g.helper.make_graph(body.nodes, g.name("cell"), body_inputs,
                                [body.value_info(s, ["N", H]) for s in new + [out]])
    k = len(scan_inputs)
    results = g.node_outputs("Scan", [zeros] * len(states) + scan_inputs, len(states) + 1, hint="scan",
                             body=graph, num_scan_inputs=k, scan_input_axes=[1] * k,
                             scan_input_directions=[int(reverse)] * k, scan_output_axes=[1],
                             scan_output_directions=[int(reverse)])
    return results[-1], results[0]


def _recurrent(g, layers, x):
    """The layers of each direction (forward first) over ``x (N, T, F)``, by the rule of the module docstring."""
    first = layers[0]
    mask = g.mask_in
    g.mask_out = mask if first.return_sequences else None  # as fastnn: the mask goes on with the sequences
    if mask is None and g.dtype == np.float32:
        return _recurrent_op(g, layers, x)
    keep = None
    if mask is not None:
        keep = g.node("Unsqueeze", [g.node("Cast", [mask], to=g.onnx.TensorProto.BOOL), g.ints([2], "axes")],
                      hint="keep")
    outs = [_scan(g, layer, x, keep, reverse)[0 if first.return_sequences else 1]
            for reverse, layer in enumerate(layers)]
    return outs[0] if len(outs) == 1 else g.node("Concat", outs, axis=-1, hint="both_directions")


@register_converter(SimpleRNN)
@register_converter(LSTM)
@register_converter(GRU)
def _recurrent_layer(layer, g, x):
    return _recurrent(g, [layer], x)


@register_converter(Bidirectional)
def _bidirectional(layer, g, x):
    return _recurrent(g, [layer.forward_layer, layer.backward_layer], x)
