"""Loopback stand-ins for the outside world (fake model APIs, a Slack emulator) used by the
tests and ``agentbridge demo``; imports nothing from the rest of ``bridge``.
"""
