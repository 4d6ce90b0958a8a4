"""What reconciliation tells the apps above it."""

from django.dispatch import Signal

# Sent once a drift computation is stored: sender=Integration, drift_run=DriftRun.
drift_computed = Signal()
