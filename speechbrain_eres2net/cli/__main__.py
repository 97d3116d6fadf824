"""``python -m speechbrain_eres2net.cli``: the ``eres2net`` command."""

import sys

from .main import main

sys.exit(main())
