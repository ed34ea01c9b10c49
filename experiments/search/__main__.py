"""``python -m experiments.search``: see :mod:`experiments.search.run`."""

from experiments.exit import exit_with

from .run import main

exit_with(main())
