"""Programs built on fastnn: the ``fastnn`` command line (:mod:`.cli`) and the MNIST pipeline (:mod:`.mnist_pipeline`).

Nothing in the library imports this package; only the console script and ``python -m fastnn`` do.
"""
