"""The ``slack_pace`` config keys, in a module of their own (model.py is at its size limit)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SlackPace(BaseModel):
    """How fast the Slack backend posts: Slack's posting limit, as token buckets (read when the
    runner starts; bridge/chat/slack/pacing.py). A 429's Retry-After always overrides these."""

    per_second: float = Field(default=1.0, gt=0)
    """Messages per second per channel, sustained (Slack: about one)."""
    burst: int = Field(default=4, ge=1)
    """Messages a channel takes at once before ``per_second`` applies (Slack: "short bursts")."""
    workspace_per_second: float = Field(default=5.0, gt=0)
    """Messages per second over all channels, so many busy agents queue instead of meeting
    Slack's workspace-wide limit (unpublished; Slack speaks of several hundred a minute)."""
    workspace_burst: int = Field(default=20, ge=1)
    """Messages the whole workspace takes at once before ``workspace_per_second`` applies."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)  # as every config model
