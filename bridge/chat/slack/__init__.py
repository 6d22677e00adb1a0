"""Slack: the chat backend people actually use (Socket Mode, via slack-bolt)."""
