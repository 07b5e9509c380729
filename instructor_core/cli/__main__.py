"""``python -m instructor_core.cli``: the ``instructor`` command."""

import sys

from instructor_core.cli import main

sys.exit(main())
