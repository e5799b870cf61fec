"""`python -m smartbrushd` starts the daemon, like `smartbrushd`."""

import sys

from smartbrushd.server import main

sys.exit(main())
