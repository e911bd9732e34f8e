"""``python -m wamp_router``: the same as the ``wamp-router`` command."""

import sys

from .cli import main

sys.exit(main())
