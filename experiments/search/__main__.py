"""``python -m experiments.search``: see :mod:`experiments.search.run`."""

import sys

from .run import main

sys.exit(main())
