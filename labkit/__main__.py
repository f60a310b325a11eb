"""``python -m labkit`` is the ``labkit`` command."""
import sys

from labkit.app.cli import main

sys.exit(main())
