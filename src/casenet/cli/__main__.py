"""``python -m casenet.cli``: the ``casenet`` command."""

import sys

from casenet.cli import main

sys.exit(main())
