"""Numba kernels: the reference's ops and signatures, compiled with ``@njit(cache=True)``.

One module per family, the same family files as the ``reference`` and
``cython`` backends; :mod:`fastnn.kernels.spec` lists the ops. Importing this
package imports numba (the backend's one import boundary); compilation is
lazy and cached. Unknown activation, loss or optimizer codes raise ValueError.
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
from .conv import col2im, im2col
from .pool import avgpool_backward, avgpool_forward, maxpool_backward, maxpool_forward

NAME = "numba"
