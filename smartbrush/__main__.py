"""`python -m smartbrush ...` is the `smartbrush` command."""

import sys

from smartbrush.cli import main

sys.exit(main())
