"""The ``fastnn`` command: ``fastnn train``, ``fastnn evaluate``, ``fastnn sweep``, ``fastnn info``.

Also reachable as ``python -m fastnn``. Run ``fastnn --help`` or
``fastnn train --help`` for the options.
"""
import argparse
import sys

DESCRIPTION = """\
fastnn: fast, light neural-network training on the CPU.

commands:
  train      train a neural network on MNIST (handwritten digits), save the best
             model and print its test-set report
  evaluate   print accuracy, confusion matrix and per-class scores of a saved model
  export     convert a saved model to ONNX (needs the onnx package)
  sweep      train a grid of configurations (optimizers, learning rates, batch
             sizes...) with several seeds and print the comparison table
  info       show the fastnn version, compute backends and thread settings

Run 'fastnn COMMAND --help' for the options of a command.
"""

EPILOG = """\
examples:
  FASTNN_DATA=../shared/data/mnist fastnn train          # ~98.5% test accuracy
  fastnn train --epochs 3 --hidden 128                     # a quicker, smaller model
  fastnn train --resume                                    # continue an interrupted run
  fastnn evaluate out/mnist/best.fnn --data ../shared/data/mnist
  fastnn export out/mnist/best.fnn out/mnist/best.onnx
  fastnn sweep --grid optimizer=sgd,adam --grid lr=0.1,0.001   # on the bundled digits
"""


def build_parser():
    """The argument parser of the ``fastnn`` command."""
    from .. import __version__
    from . import mnist_pipeline as mp

    parser = argparse.ArgumentParser(prog="fastnn", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train an MLP on MNIST and evaluate it",
                           description=mp.TRAIN_DESCRIPTION,
                           epilog=mp.TRAIN_EPILOG.replace("%(prog)s", "fastnn train").replace("%%", "%"),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    mp.add_train_arguments(train)
    evaluate = sub.add_parser(
        "evaluate", help="evaluate a saved model on the test set",
        description="Load a model file (or training checkpoint) written by 'fastnn train' or Network.save "
                    "and print its test-set report: accuracy, the confusion matrix, per-class precision, "
                    "recall and F1, and their macro averages. The test set is the one the model was trained "
                    "on (recorded in the file), or MNIST for 784-input models.",
        epilog="example:\n  fastnn evaluate out/mnist/best.fnn --data ../shared/data/mnist",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    mp.add_evaluate_arguments(evaluate)
    export = sub.add_parser(
        "export", help="convert a saved model to ONNX",
        description="Convert a model file (or training checkpoint) written by 'fastnn train' or Network.save "
                    "into an ONNX model (opset 17, IR version 8) that onnxruntime and other ONNX runtimes "
                    "load. Classification models output class probabilities (Network.predict_proba), "
                    "regression models their raw outputs. Needs the onnx package: "
                    "pip install \"fastnn[onnx]\".",
        epilog="example:\n  fastnn export out/mnist/best.fnn out/mnist/best.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("model", help="model file (.fnn) or training checkpoint (.ckpt)")
    export.add_argument("out", help="ONNX file to write (written atomically)")
    export.add_argument("--output", choices=("auto", "proba", "forward"), default="auto",
                        help="graph output: probabilities (proba), raw outputs (forward), or by task (auto)")
    from . import sweep_cli

    sweep = sub.add_parser("sweep", help="compare a grid of training configurations",
                           description=sweep_cli.SWEEP_DESCRIPTION, epilog=sweep_cli.SWEEP_EPILOG,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep_cli.add_sweep_arguments(sweep)
    sub.add_parser("info", help="show version, backends, threads and BLAS",
                   description="Show the fastnn version, which compute backends are available, "
                               "thread settings and the BLAS libraries in use.")
    return parser


def run_export(args, print_fn=print):
    """``fastnn export MODEL OUT``: load a model file and write it as ONNX."""
    from ..integrations.onnx import export_onnx
    from ..io import load_network

    net = load_network(args.model)
    export_onnx(net, args.out, output=args.output)
    print_fn(f"wrote {args.out}: ONNX opset 17, {len(net.layers)} layers, input (N, "
             f"{', '.join(str(d) for d in net.input_shape)}), {net.dtype.name}")


def main(argv=None):
    """Run the ``fastnn`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from . import mnist_pipeline as mp
    from ..errors import FastnnError

    try:
        if args.command == "train":
            mp.run_train(args)
        elif args.command == "evaluate":
            mp.run_evaluate(args)
        elif args.command == "export":
            run_export(args)
        elif args.command == "sweep":
            from .sweep_cli import run_sweep

            return run_sweep(args)
        elif args.command == "info":
            from .._info import show_config

            show_config()
    except KeyboardInterrupt:
        if args.command == "train":
            print(f"\ninterrupted; continue with: fastnn train --resume --out {args.out}", file=sys.stderr)
        return 130
    except (FileNotFoundError, IsADirectoryError, PermissionError, FastnnError, ValueError) as exc:
        print(f"fastnn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:
        if args.command != "export":  # the onnx package missing is a user's setup, anything else a bug
            raise
        print(f"fastnn {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
