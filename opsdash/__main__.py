"""``python -m opsdash``."""

import sys

from opsdash.cli import main

sys.exit(main())
