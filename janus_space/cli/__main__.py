"""``python -m janus_space.cli``: the same as the ``janus-space`` console script."""

import sys

from . import main

sys.exit(main())
