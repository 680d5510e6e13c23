"""Plain-numpy reference kernels: the readable oracle every backend is tested against.

One module per family (``activations``, ``dense``, ``losses``, ``optim``,
``norm``, ``image``, ``driver``), the same family files as the ``numba`` and
``cython`` backends; :mod:`fastnn.kernels.spec` lists every op, its arguments
and contract. Ops write into caller-owned ``*_out`` buffers and return only
scalars (a loss sum, a norm), so the compiled backends can run them without
allocating.

Conventions: ``X (n, n_in)``, ``W (n_in, n_out)``, ``b (n_out,)``, ``Z`` the
pre-activation, ``A`` the activation, ``dA/dZ/dW/db/dX`` gradients of the loss.
Activation, loss and optimizer kinds are small integers (see
:mod:`fastnn.kernels.codes`); an unknown code raises ValueError.
"""
from .activations import activation_backward, activation_forward
from .dense import dense_backward, dense_chain_forward, dense_forward
from .driver import gather_rows
from .image import image_rotate, image_shift
from .losses import (count_correct, focal_forward_backward, huber_forward_backward, loss_forward_backward,
                     mae_forward_backward)
from .norm import layernorm_rows_backward, layernorm_rows_forward  # the plan rows' LayerNorm pair
from .norm import batchnorm_backward, batchnorm_forward, layernorm_backward, layernorm_forward
from .optim import clip_gradients, optimizer_update, reduce_gradients, update_span
from .rnn import (gru_backward, gru_forward, gru_infer, lstm_backward, lstm_forward, lstm_infer,
                  simple_rnn_backward, simple_rnn_forward, simple_rnn_infer)
from .embedding import embedding_backward, embedding_forward
from .attention import attention_backward, attention_forward
from .plan import apply_update, dropout_forward, grad_steps, train_steps
# Convolutional networks (issue 11).
from .conv import col2im, conv1ch_forward, conv1ch_weight_grad, im2col
from .pool import avgpool_backward, avgpool_forward, maxpool_backward, maxpool_forward

NAME = "reference"
