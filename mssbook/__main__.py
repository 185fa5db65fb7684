"""``python -m mssbook ...`` is the same as the ``mssbook`` command."""

from .cli import main

raise SystemExit(main())
