"""What integrations tell the apps above them."""

from django.dispatch import Signal

# Sent when an extraction run has succeeded and its results are stored: sender=Integration, run=ExtractionRun.
extraction_succeeded = Signal()
