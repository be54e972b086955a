"""``python -m rxbinance``: the command line."""

import sys

from rxbinance.cli import main

if __name__ == "__main__":
    sys.exit(main())
