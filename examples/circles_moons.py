"""Circles and moons: the two scikit-learn toy problems, each learned by a 2-16-2 ReLU MLP.

    python examples/circles_moons.py
    python examples/circles_moons.py --problem moons --noise 0.2 --plot moons.png

1000 points per problem at noise 0.1 (fastnn.data.synthetic.circles with
inner radius 0.5, and synthetic.moons), a third held out. A linear model
is at chance on the circles and ~0.86 on the moons; one hidden layer of 16
ReLU units bends the boundary round both. Adam at lr 0.01 (the guides'
range for simple problems is 0.001-0.01), full batch, 500 epochs (the
guide's budget for simple problems is 500-1000). With --plot and both
problems, PATH gets a -circles / -moons suffix per problem.

Targets: held-out accuracy >= 0.97 on each at noise 0.1. Measured: ~0.99
and ~1.0 in ~0.2 s each.
"""
import sys
from pathlib import Path

import _common as ex
from fastnn.data import synthetic

TARGET = 0.97
GENERATORS = {"circles": synthetic.circles, "moons": synthetic.moons}


def main(argv=None):
    p = ex.parser(__doc__, epochs=500, lr=0.01)
    p.add_argument("--problem", choices=["both", *GENERATORS], default="both")
    p.add_argument("--noise", type=float, default=0.1, help="coordinate noise (default 0.1)")
    args = p.parse_args(argv)
    problems = list(GENERATORS) if args.problem == "both" else [args.problem]
    targets, extra, seconds, epochs = [], [], 0.0, 0
    for name in problems:
        X, y = GENERATORS[name](1000, noise=args.noise, seed=args.seed)
        (X_train, y_train), (X_test, y_test) = ex.holdout(X, y, 1 / 3, seed=args.seed)
        net = ex.mlp(2, [16], 2, "relu", seed=args.seed)
        trainer, history, took = ex.fit(net, X_train, y_train, args)
        seconds += took
        epochs = len(history)
        extra.append((f"{name} train accuracy", ex.accuracy(net, X_train, y_train)))
        targets.append(ex.Target(f"{name} held-out accuracy", ex.accuracy(net, X_test, y_test), TARGET))
        if args.plot:
            path = Path(args.plot)
            if len(problems) > 1:
                path = path.with_name(f"{path.stem}-{name}{path.suffix}")
            ex.maybe_plot(args, net, X_test, y_test, history, title=f"{name}: held-out points", path=str(path))
    return ex.report(f"{' and '.join(problems)} (noise {args.noise:g}; 2-16-2 ReLU)", targets,
                     seconds=seconds, epochs=epochs, extra=extra)


if __name__ == "__main__":
    sys.exit(main())
