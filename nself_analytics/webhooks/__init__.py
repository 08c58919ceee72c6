"""Webhooks: the facts the drain reports (:mod:`.facts`) and the signed sender of the outbox (:mod:`.sender`)."""

from __future__ import annotations

from .facts import record_funnel_completions
from .sender import WebhookSender, sign

__all__ = ["WEBHOOK_EVENTS", "WebhookSender", "record_funnel_completions", "sign"]

# The events a webhook can subscribe to.
WEBHOOK_EVENTS = ("quota.exceeded", "funnel.completed", "event.tracked")
