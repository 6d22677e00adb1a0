"""The runner as a program: the `agentbridge` command line, the daemon that wires every
capability together, `status`, and the demo.

The only package that wires everything: it may import any other package in ``bridge`` and
``runtimes``. Nothing imports ``bridge.app``.
"""
