"""Fixtures for webhook tests: local receivers (see helpers.Receiver) and the URL setting."""

import pytest

from partners.webhooks import sending
from tests.webhooks.helpers import Receiver


@pytest.fixture
def receiver():
    """A listening receiver answering 200."""
    server = Receiver().start()
    yield server
    server.close()


@pytest.fixture
def make_receiver():
    """A factory for receivers (``listening=False`` for one that is down at first)."""
    servers: list[Receiver] = []

    def make(*, listening: bool = True, **kwargs) -> Receiver:
        server = Receiver(**kwargs)
        if listening:
            server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture(autouse=True)
def _private_urls_allowed(settings):
    """The receivers listen on loopback; the URL-policy tests turn this off again."""
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True


@pytest.fixture(autouse=True)
def _no_kept_connections():
    """Each test starts and ends without the sessions a previous send kept in this process."""
    sending.close_sessions()
    yield
    sending.close_sessions()
