"""`python -m flowsync` is the `flowsync` command."""

import sys

from flowsync.cli import main

sys.exit(main())
