"""Spiral: three interleaved arms (the nnfs "create_data" problem), learned by a 2-32-32-3 ReLU MLP.

    python examples/spiral.py
    python examples/spiral.py --noise 0.2 --plot spiral.png

300 points per arm at angle noise 0.1 (fastnn.data.synthetic.spiral_data),
one third held out (stratified). Softmax + categorical cross-entropy as in
the guide, Adam at lr 0.01 (the guides' range for simple problems is
0.001-0.01), full batch, 1000 epochs. The guide's plain-SGD trainer ran
10,000 iterations and only started to climb after 3,000-4,000; Adam gets
there in a few hundred.

Target: held-out accuracy >= 0.95. Measured: 0.97-0.99 held out (seeds
0-5) in ~0.3-0.5 s. (At --noise 0.2 the arms overlap: expect ~0.85-0.9 held out.)
"""
import sys

import _common as ex
from fastnn.data import synthetic

TARGET = 0.95


def main(argv=None):
    p = ex.parser(__doc__, epochs=1000, lr=0.01)
    p.add_argument("--classes", type=int, default=3, help="number of arms (default 3)")
    p.add_argument("--noise", type=float, default=0.1, help="angle noise (default 0.1)")
    args = p.parse_args(argv)
    X, y = synthetic.spiral_data(300, args.classes, noise=args.noise, seed=args.seed)
    (X_train, y_train), (X_test, y_test) = ex.holdout(X, y, 1 / 3, seed=args.seed)
    net = ex.mlp(2, [32, 32], args.classes, "relu", seed=args.seed)
    trainer, history, seconds = ex.fit(net, X_train, y_train, args)
    status = ex.report(f"spiral ({args.classes} arms, noise {args.noise}; 2-32-32-{args.classes} ReLU)",
                       [ex.Target("held-out accuracy", ex.accuracy(net, X_test, y_test), TARGET)],
                       seconds=seconds, epochs=len(history),
                       extra=[("train accuracy", ex.accuracy(net, X_train, y_train))])
    ex.maybe_plot(args, net, X_test, y_test, history, title="spiral: held-out points")
    return status


if __name__ == "__main__":
    sys.exit(main())
