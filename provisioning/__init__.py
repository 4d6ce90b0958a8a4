"""Actions and their state machine, approvals, access requests, workers."""
