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

# Columns of the int64 layer table the whole-run drivers take.
META_N_IN = 0
META_N_OUT = 1
META_ACT = 2
META_W_OFF = 3
META_B_OFF = 4
N_META = 5

# Status of a compiled call: the Cython kernels run without the GIL and return one of these
# (every code switch ends in an unknown-code branch); the Python wrappers raise ValueError.
STATUS_OK = 0
STATUS_BAD_ACT = 1
STATUS_BAD_LOSS = 2
STATUS_BAD_OPT = 3
