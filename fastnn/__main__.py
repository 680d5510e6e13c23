"""``python -m fastnn``: the ``fastnn`` command line (see :mod:`fastnn.apps.cli`)."""
import sys

from .apps.cli import main

sys.exit(main())
