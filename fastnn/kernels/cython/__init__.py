"""Cython kernels: the reference's ops and signatures, compiled in ``csrc/_kernels.pyx``.

One module per family, the same family files as the ``reference`` and
``numba`` backends (``image`` has no Cython kernels yet: the spec declares a
numba fallback). GEMMs call the BLAS that scipy ships
(``scipy.linalg.cython_blas``) on the row-major buffers directly; bias +
activation after a GEMM, and activation derivative + bias gradient before
one, are fused into single passes. The nogil kernels return a status that
the wrappers turn into ValueError (unknown activation, loss or optimizer
code). Importing this package imports the extension (the backend's one
import boundary: an actionable ImportError when it is not built).
"""
from ._adapt import _k
from .activations import activation_backward, activation_forward
from .dense import dense_backward, dense_chain_forward, dense_forward
from .driver import gather_rows
from .losses import (count_correct, focal_forward_backward, huber_forward_backward, loss_forward_backward,
                     mae_forward_backward)
from .norm import layernorm_rows_backward, layernorm_rows_forward  # the plan rows' LayerNorm pair
from .norm import batchnorm_backward, batchnorm_forward, layernorm_backward, layernorm_forward
from .optim import clip_gradients, optimizer_update, reduce_gradients, update_span
from .plan import apply_update, dropout_forward, grad_steps, train_steps
# Convolutional networks (issue 11).
from .conv import col2im, conv1ch_forward, conv1ch_weight_grad, im2col
from .pool import avgpool_backward, avgpool_forward, maxpool_backward, maxpool_forward
# Sequence models (issue 12).
from .attention import attention_backward, attention_forward
from .embedding import embedding_backward, embedding_forward
from .rnn import (gru_backward, gru_forward, gru_infer, lstm_backward, lstm_forward, lstm_infer,
                  simple_rnn_backward, simple_rnn_forward, simple_rnn_infer)

NAME = "cython"
#: True when the extension was compiled with OpenMP (``n_shards > 1`` really runs in parallel).
OPENMP = _k.OPENMP
