"""Settings for the worker a test kills mid-run: the service's own, posting one payee per
transaction (``SETTLEMENT_POST_BATCH``), so the run makes visible progress before it dies."""

from livecommerce.settings import *  # noqa: F403

SETTLEMENT_POST_BATCH = 1
