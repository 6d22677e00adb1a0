"""Compatibility entry point: ``python -m bridge.cli`` (what hooks of agents launched by runners
before the package split may run). New code uses ``agentbridge`` or ``python -m bridge``."""

from bridge.app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
