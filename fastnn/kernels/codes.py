"""Integer codes shared by every backend, so compiled kernels dispatch without strings."""

# Activations.
ACT_LINEAR = 0
ACT_RELU = 1
ACT_LEAKY_RELU = 2
ACT_ELU = 3
ACT_SIGMOID = 4
ACT_TANH = 5
ACT_GELU = 6
ACT_SILU = 7
ACT_SOFTMAX = 8

# Losses with a fused forward+backward kernel.
LOSS_SOFTMAX_CE = 0
LOSS_MSE = 1
LOSS_BCE_LOGITS = 2

# Optimizers (one fused update each over the flat parameter buffer).
OPT_SGD = 0
OPT_ADAM = 1      # AdamW when hyper[H_DECOUPLED] != 0
OPT_RMSPROP = 2
OPT_ADAGRAD = 3

# Slots of the float64 hyper-parameter vector every optimizer kernel takes.
H_LR = 0
H_BETA1 = 1
H_BETA2 = 2       # also RMSprop's rho
H_EPS = 3
H_WEIGHT_DECAY = 4
H_MOMENTUM = 5
H_NESTEROV = 6
H_DECOUPLED = 7
H_CLIP_NORM = 8
H_CLIP_VALUE = 9
N_HYPER = 10

# Losses the plan drivers also run; the per-op loss kernel (loss_forward_backward) takes only
# KERNEL_LOSSES: these three have kernels of their own (mae/huber/focal_forward_backward).
LOSS_MAE = 3
LOSS_HUBER = 4     # loss_f[0] = delta
LOSS_FOCAL = 5     # loss_f[0] = gamma, loss_f[1:1+k] = per-class alpha
KERNEL_LOSSES = (LOSS_SOFTMAX_CE, LOSS_MSE, LOSS_BCE_LOGITS)

# Ops: one row of a compiled plan per op (fastnn.engine.plan builds the table).
OP_DENSE = 0       # Z = A_in @ W + b, A = f(Z)
OP_DROPOUT = 1     # A = A_in * mask, mask from a counter-based hash (seed, step, row, unit)
OP_BATCHNORM = 2   # per feature (P_C < 0) or per channel of NHWC rows (P_C channels) over the whole batch: a sync point
OP_LAYERNORM = 3   # per row over its features
OP_CONV2D = 4      # Z = im2col(A_in) @ W + b, A = f(Z), NHWC rows (geometry in the P_H.. columns)
OP_MAXPOOL2D = 5   # window maxima; backward rescans the kept input for each window's first maximum
OP_AVGPOOL2D = 6   # window means over the valid entries (Keras)
OP_ACTIVATION = 7  # A = f(A_in) (the Activation layer); softmax over the last P_C values of each row (P_C < 0: all)

# Integer columns of a plan row (int64 table, one row per op).
P_OP = 0           # OP_* code
P_ACT = 1          # activation code (OP_DENSE, OP_CONV2D, OP_ACTIVATION; OP_BATCHNORM: linear or relu), else ACT_LINEAR
P_N_IN = 2         # input width per sample
P_N_OUT = 3        # output width per sample
P_PARAM0 = 4       # offset in params of W / gamma (-1: none)
P_PARAM1 = 5       # offset in params of b / beta (-1: none, e.g. a bias-free Conv2D)
P_BUF0 = 6         # offset in the network buffers of running_mean (-1: none)
P_BUF1 = 7         # offset in the network buffers of running_var (-1: none)
P_IN = 8           # work offset of the input block (rows x n_in)
P_Z = 9            # work offset of Z (dense) / Xhat (batch norm) / mask (dropout)
P_OUT = 10         # work offset of the output block (== P_Z for a linear dense)
P_AUX = 11         # work offset of a row's extra per-row block, -1: none (no op uses one now)
P_SEED = 12        # dropout: 63-bit key of the layer's mask stream
P_NEED_DX = 13     # 1 if backward must produce the input gradient
P_STATS = 14       # offset in the float64 stats buffer (BatchNorm statistics, LayerNorm rows), -1: none
# Image geometry of conv / pool rows (-1 for the others): input H, W, C, output Ho, Wo, window, stride, padding.
P_H = 15
P_W = 16
P_C = 17           # also BatchNorm / Activation rows: channels of NHWC rows (statistics / softmax per channel), -1: flat
P_HO = 18
P_WO = 19
P_KH = 20
P_KW = 21
P_SH = 22
P_SW = 23
P_PH = 24          # top padding
P_PW = 25          # left padding
P_COLS = 26        # conv: work offset of the im2col block (rows x Ho*Wo*kh*kw*C); -1: a 1x1 kernel reads A_in
N_PCOL = 27

# Float columns of a plan row (float64 table).
F_ALPHA = 0        # activation parameter (leaky_relu slope, elu alpha)
F_EPS = 1          # norm epsilon
F_RATE = 2         # dropout rate
F_MOMENTUM = 3     # BatchNorm running-statistics momentum
F_L1 = 4           # penalty l1 * sum|W|
F_L2 = 5           # penalty l2 * sum W^2
N_FCOL = 6

# Global work offsets of a plan (int64 vector, per shard slice unless noted).
W_X = 0            # gathered input rows (rows x n_in of row 0)
W_Y = 1            # gathered targets (rows x ny)
W_DA = 2           # ping-pong gradient blocks (rows x widest) ...
W_DX = 3
W_DZ = 4           # scratch for dZ (rows x widest)
W_STATS = 5        # BatchNorm partial / combined statistics (4 x n_features per BN row, see plan)
W_GRAD = 6         # shard gradient (n_params) when n_shards > 1, else -1
W_STRIDE = 7       # elements per shard slice
W_ROWS = 8         # row capacity of one shard
W_DCOLS = 9        # conv input-gradient columns (rows x the widest Ho*Wo*kh*kw*C of a conv row needing dX), else -1
N_WCOL = 10

# The step schedule of a plan (fastnn.engine.plan): item kinds and section syncs.
IT_GATHER = 0      # gather the shard's rows of X and Y
IT_FORWARD = 1     # forward of plan row `row`, phase `phase`
IT_LOSS = 2        # loss value, correct count, output gradient
IT_BACKWARD = 3    # backward of plan row `row`, phase `phase`
IT_PENALTY = 4     # L1/L2 penalties (shard 0 only)
SYNC_NONE = 0
SYNC_BN_FORWARD = 1   # combine the shards' BatchNorm statistics, update the running ones
SYNC_BN_BACKWARD = 2  # sum the shards' BatchNorm dY and dY*Xhat
BN_STATS = 6       # float64 statistics per BatchNorm feature (see fastnn.engine.plan)
LN_STATS_K = 3     # float64 scratch per LayerNorm feature: dbeta and dgamma sums, gamma (forward: gamma, beta)
LN_STATS_ROWS = 2  # float64 per LayerNorm shard row: its mean and inv_std (backward recomputes Xhat)
# Bytes of one conv tile's columns, Z, A and input-gradient columns (fastnn.kernels.tiling's rule,
# every compiled backend's conv rows): a quarter of a 2 MB L2, so the tile stays in cache from im2col
# through the GEMM epilogue and from dZ through col2im. The same GEMMs on a whole 64-image shard
# (7744 x 288 x 64, the example CNN's second conv) ran at 43-57 GFLOP/s, on a 16-image block already
# in L2 at 126. Sweep (bench/cnn models, 2048 MNIST images, batch 128, 1 thread, Cython, samples per
# CPU-second, medians of 6 epochs in interleaved processes, load 7-8 on 2 cores): whole shard /
# 256 KB / 512 KB / 1 MB / 2 MB tiles: example 3,092 / 3,483 / 3,337 / 3,473 / 3,151, LeNet-5
# 7,599 / 8,923 / 9,065 / 8,701 / 7,942; at batch 32 512 KB was the best of the five for both.
CONV_TILE_BYTES = 1 << 19

# Status of a compiled call: the Cython kernels run without the GIL and return one of these
# (every code switch ends in an unknown-code branch); the Python wrappers raise ValueError.
STATUS_OK = 0
STATUS_BAD_ACT = 1
STATUS_BAD_LOSS = 2
STATUS_BAD_OPT = 3
