"""``python -m aioir.cli`` runs the command line."""

import sys

from aioir.cli import main

sys.exit(main())
