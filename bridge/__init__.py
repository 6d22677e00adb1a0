"""agentbridge: run a fleet of headless coding agents in tmux, mirrored to chat.

One subpackage per capability; see docs/architecture.md for the map and each package's
docstring for what it may import (tests/unit/test_layering.py keeps it so).
"""
