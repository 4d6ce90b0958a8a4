"""Signals provisioning sends, for the apps built on it (lifecycle automation follows its syncs)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent once the success of some actions is committed; ``actions``: the Action rows.
actions_succeeded = Signal()
