"""``python -m bridge``: the same as the ``agentbridge`` command (hooks use it as a fallback)."""

from bridge.app.cli import main

raise SystemExit(main())
