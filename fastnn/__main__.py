"""``python -m fastnn``: the ``fastnn`` command line (see :mod:`fastnn.cli`)."""
import sys

from .cli import main

sys.exit(main())
