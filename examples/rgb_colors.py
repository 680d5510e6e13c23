"""RGB colours: name the colour of an RGB triple (10 names) with a 3-16-16-10 ReLU MLP.

    python examples/rgb_colors.py
    python examples/rgb_colors.py --plot rgb_curves.png   # training curves (inputs are 3-D)

1500 RGB values in [0, 1]^3, each labelled with the nearest of black,
white, gray, red, green, blue, yellow, cyan, magenta, orange
(fastnn.data.synthetic.rgb_colors, balanced classes), a third held out.
The guide budgets 1000-3000 epochs for this "medium" problem at a
learning rate of 0.001-0.01: 1000 full-batch epochs of Adam at lr 0.01.
After training it names a few colours.

Target: held-out accuracy >= 0.95. Measured: ~0.97-0.98 in ~1 s.
"""
import sys

import numpy as np

import _common as ex
from fastnn.data import synthetic

TARGET = 0.95
SWATCHES = [(0.9, 0.1, 0.1), (0.1, 0.2, 0.9), (0.95, 0.95, 0.2), (0.45, 0.5, 0.55), (0.95, 0.55, 0.05),
            (0.05, 0.05, 0.1)]


def main(argv=None):
    args = ex.parser(__doc__, epochs=1000, lr=0.01).parse_args(argv)
    X, y = synthetic.rgb_colors(1500, seed=args.seed)
    (X_train, y_train), (X_test, y_test) = ex.holdout(X, y, 1 / 3, seed=args.seed)
    net = ex.mlp(3, [16, 16], len(synthetic.RGB_COLOR_NAMES), "relu", seed=args.seed)
    trainer, history, seconds = ex.fit(net, X_train, y_train, args, validation_data=(X_test, y_test))
    names = synthetic.RGB_COLOR_NAMES
    for rgb, k in zip(SWATCHES, net.predict(np.array(SWATCHES, dtype=np.float32))):
        print(f"  rgb{rgb} -> {names[k]}")
    status = ex.report("RGB colour names (3-16-16-10 ReLU)",
                       [ex.Target("held-out accuracy", ex.accuracy(net, X_test, y_test), TARGET)],
                       seconds=seconds, epochs=len(history),
                       extra=[("train accuracy", ex.accuracy(net, X_train, y_train))])
    ex.maybe_plot(args, net, history=history)
    return status


if __name__ == "__main__":
    sys.exit(main())
