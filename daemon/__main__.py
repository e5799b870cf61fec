"""`python -m smartbrush.daemon` starts the daemon, like `smartbrushd`."""

import sys

from smartbrush.daemon.server import main

sys.exit(main())
