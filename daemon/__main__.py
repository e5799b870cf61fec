"""`python -m daemon` starts the daemon, like `smartbrushd`."""

import sys

from daemon.server import main

sys.exit(main())
