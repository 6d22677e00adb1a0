"""Pure text work for the mirror: Markdown to Slack mrkdwn, tool summaries, splitting long
messages, one event to one message, and secret redaction.

May import: ``runtimes.events``, ``bridge.errors``. No I/O, no clock, nothing else.
"""
