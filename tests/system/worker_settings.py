"""Settings for a worker that a test kills mid settlement run: the service's own, posting one
payee's settlement entry per transaction (``SETTLEMENT_POST_BATCH``), so the run makes visible
progress before the kill."""

from livecommerce.settings import *  # noqa: F403

SETTLEMENT_POST_BATCH = 1
