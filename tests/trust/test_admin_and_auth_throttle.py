"""Finding 5 of issue 18: the Django admin edited partners, products and sessions around the
services (so the audit log missed them), and neither admin logins nor failed API
authentications were ever rate-limited."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEntry
from orders.models import LiveSession, Order, Product
from partners.models import APIKey, Partner
from tests import factories
from tests.conftest import KeyedClient, client_for
from tests.orders.helpers import place_order

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
    client = Client()
    client.force_login(user)
    return client


class TestAdminIsReadOnly:
    def test_no_admin_page_changes_partners_keys_products_sessions_or_orders(
        self, superuser_client, host_client, brand, product, live_session
    ):
        order = place_order(host_client, product)
        key = APIKey.objects.filter(partner__isnull=False).first()
        rows = {
            "partners/partner": (Partner, brand.pk, {"name": "Renamed", "status": "suspended"}),
            "partners/apikey": (APIKey, key.pk, {"revoked": "on"}),
            "orders/product": (Product, product.pk, {"price": "1", "inventory": "0"}),
            "orders/livesession": (LiveSession, live_session.pk, {"title": "Renamed"}),
            "orders/order": (Order, order["id"], {"status": "canceled"}),
        }
        audit_before = AuditEntry.objects.count()
        for path, (model, pk, change) in rows.items():
            before = model.objects.filter(pk=pk).values().get()
            page = superuser_client.get(f"/admin/{path}/{pk}/change/")
            assert page.status_code == 200, path  # support still reads it
            assert b'type="submit"' not in page.content or b'name="_save"' not in page.content
            # adding, changing and deleting are refused, even by a superuser
            assert superuser_client.get(f"/admin/{path}/add/").status_code == 403, path
            posted = superuser_client.post(f"/admin/{path}/{pk}/change/", change)
            assert posted.status_code == 403, path
            assert (
                superuser_client.post(f"/admin/{path}/{pk}/delete/", {"post": "yes"}).status_code
                == 403
            ), path
            assert model.objects.filter(pk=pk).values().get() == before, path
        assert AuditEntry.objects.count() == audit_before


class TestAdminLoginIsRateLimited:
    def test_the_sixth_failed_login_from_an_address_is_locked_out(self, settings):
        get_user_model().objects.create_superuser("root", "root@example.com", "pw-123456")
        client = Client()
        for _ in range(settings.AXES_FAILURE_LIMIT - 1):
            response = client.post(
                "/admin/login/?next=/admin/", {"username": "root", "password": "wrong"}
            )
            assert response.status_code == 200  # the form again, with its error
        locked = client.post("/admin/login/?next=/admin/", {"username": "root", "password": "x"})
        assert locked.status_code == 429
        # even the right password is refused while the address is locked out
        right = client.post(
            "/admin/login/?next=/admin/", {"username": "root", "password": "pw-123456"}
        )
        assert right.status_code == 429
        # another address is not affected
        other = Client(REMOTE_ADDR="10.9.8.7")
        ok = other.post("/admin/login/?next=/admin/", {"username": "root", "password": "pw-123456"})
        assert ok.status_code == 302


class TestFailedAPIAuthentication:
    def test_failed_authentications_are_throttled_per_address_with_retry_after(self, settings):
        settings.FAILED_AUTH_RATE = "5/min"
        partner = factories.HostAppFactory()
        good = client_for(partner=partner)
        for attempt in range(5):
            guess = KeyedClient(f"guess.{attempt:040d}")
            assert guess.get("/api/v1/me").status_code == 401

        throttled = KeyedClient("guess.again").get("/api/v1/me")

        assert throttled.status_code == 429
        assert int(throttled["Retry-After"]) >= 1
        assert throttled.json()["errors"][0]["code"] == "throttled"
        # the address is throttled, whatever key it shows, until the window ends
        assert good.get("/api/v1/me").status_code == 429
        # another address is not
        elsewhere = KeyedClient(good.key, REMOTE_ADDR="10.1.1.1")
        assert elsewhere.get("/api/v1/me").status_code == 200

    def test_successful_calls_and_calls_without_a_key_do_not_count(self, settings, api_client):
        settings.FAILED_AUTH_RATE = "2/min"
        good = client_for(partner=factories.HostAppFactory())
        for _ in range(5):
            assert good.get("/api/v1/me").status_code == 200
            assert api_client.get("/api/v1/me").status_code == 401
        assert good.get("/api/v1/me").status_code == 200

    def test_a_failed_post_with_an_idempotency_key_counts_once(self, settings):
        # the idempotency layer authenticates a POST before the view does; one request is one
        # attempt, so the limit is reached after as many requests as it says, not half as many
        settings.FAILED_AUTH_RATE = "4/min"
        for attempt in range(4):
            guess = KeyedClient(f"guess.{attempt:040d}")
            response = guess.post("/api/v1/orders", {}, HTTP_IDEMPOTENCY_KEY=f"k{attempt}")
            assert response.status_code == 401, (attempt, response.content)

        throttled = KeyedClient("guess.again").post(
            "/api/v1/orders", {}, HTTP_IDEMPOTENCY_KEY="k-again"
        )

        assert throttled.status_code == 429
