"""``python -m aioir``: the same command line as the ``aioir`` console script."""

import sys

from aioir.cli import main

if __name__ == "__main__":
    sys.exit(main())
