"""The Python client against the real service over HTTP: auth, errors, idempotency, retries,
paging."""

import io
import socket
import uuid
from datetime import date

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command

from clients import (
    ApiError,
    AuthenticationError,
    NetworkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    Unprocessable,
    ValidationError,
)
from livecommerce.models import IdempotencyRecord

pytestmark = pytest.mark.django_db(transaction=True)


class TestAuthenticationAndErrors:
    def test_me_tells_the_caller_who_it_is(self, ops):
        me = ops.me()

        assert me["type"] == "staff"
        assert me["role"] == "ops"

    def test_no_key_is_an_authentication_error(self, make_client):
        with pytest.raises(AuthenticationError) as caught:
            make_client(None).me()

        assert caught.value.status == 401
        assert caught.value.type == "client_error"
        assert caught.value.code == "not_authenticated"

    def test_an_unknown_key_is_an_authentication_error(self, make_client):
        with pytest.raises(AuthenticationError) as caught:
            make_client("Zz9yXw8v.not-a-real-key").me()

        assert caught.value.code == "authentication_failed"

    def test_a_revoked_key_stops_working(self, ops, partner_client):
        brand = partner_client("brand")
        key_id = brand.me()["api_key"]["id"]

        ops.api_keys.revoke(key_id)

        with pytest.raises(AuthenticationError):
            brand.me()

    def test_a_suspended_partner_is_denied(self, ops, partner_client):
        creator = partner_client("creator")

        ops.partners.suspend(creator.partner["id"])

        with pytest.raises(PermissionDenied) as caught:
            creator.me()
        assert caught.value.status == 403

    def test_a_role_that_may_not_act_is_denied(self, partner_client):
        host_app = partner_client("host_app")

        with pytest.raises(PermissionDenied) as caught:
            host_app.partners.create(kind="creator", name="Not allowed")

        assert caught.value.code == "permission_denied"

    def test_an_unknown_object_is_not_found(self, ops):
        with pytest.raises(NotFound) as caught:
            ops.partners.get("prt_doesnotexist")

        assert caught.value.status == 404

    def test_bad_input_is_a_validation_error_naming_the_field(self, ops):
        with pytest.raises(ValidationError) as caught:
            ops.partners.create(kind="wizard", name="Merlin")

        error = caught.value
        assert error.status == 400
        assert error.type == "validation_error"
        assert error.attr == "kind"
        assert error.errors[0]["code"] == "invalid_choice"
        assert isinstance(error, ApiError)

    def test_a_reused_idempotency_key_with_another_body_is_unprocessable(self, ops):
        key = str(uuid.uuid4())
        ops.partners.create(kind="creator", name="First", idempotency_key=key)

        with pytest.raises(Unprocessable) as caught:
            ops.partners.create(kind="creator", name="Second", idempotency_key=key)

        assert caught.value.status == 422
        assert caught.value.code == "idempotency_key_reused"


class TestIdempotency:
    def test_the_same_post_twice_with_one_key_makes_one_partner(self, ops):
        key = str(uuid.uuid4())

        first = ops.partners.create(kind="creator", name="Once", idempotency_key=key)
        second = ops.partners.create(kind="creator", name="Once", idempotency_key=key)

        assert second == first
        assert ops.last_response.headers["Idempotent-Replayed"] == "true"
        assert [p["id"] for p in ops.partners.list(name="Once")] == [first["id"]]

    def test_a_lost_response_is_retried_with_the_same_key_and_makes_one_object(
        self, make_client, ops_key, proxy, recorder, ops
    ):
        # given a network that loses the service's answer to the first POST
        client = make_client(ops_key, base=proxy.url)
        proxy.lose_responses("POST", times=1)

        # when the client creates a partner
        created = client.partners.create(kind="creator", name="Lost and found")

        # then it retried once, with the same Idempotency-Key, and got the first answer back
        posts = [headers for method, _, headers in proxy.forwarded if method == "POST"]
        assert len(posts) == 2
        assert posts[0]["Idempotency-Key"] == posts[1]["Idempotency-Key"]
        assert [r.status for r in recorder.retries] == [None]
        assert client.last_response.headers["Idempotent-Replayed"] == "true"
        # and the service holds exactly one such partner
        assert [p["id"] for p in ops.partners.list(name="Lost and found")] == [created["id"]]

    def test_each_post_gets_its_own_key(self, make_client, ops_key, proxy):
        client = make_client(ops_key, base=proxy.url)

        client.partners.create(kind="creator", name="A")
        client.partners.create(kind="creator", name="A")

        keys = [headers["Idempotency-Key"] for method, _, headers in proxy.forwarded]
        assert len(set(keys)) == 2
        assert all(uuid.UUID(key).version == 4 for key in keys)

    def test_a_key_still_in_use_is_retried_until_the_first_request_finishes(self, ops, recorder):
        # given a first request with this key that the service still shows as running
        key = str(uuid.uuid4())
        first = ops.partners.create(kind="creator", name="Racer", idempotency_key=key)
        IdempotencyRecord.objects.filter(key=key).update(in_progress=True)

        def first_request_finishes(info):
            recorder.on_retry(info)
            IdempotencyRecord.objects.filter(key=key).update(in_progress=False)

        ops.on_retry = first_request_finishes

        # when the client sends the same request again
        again = ops.partners.create(kind="creator", name="Racer", idempotency_key=key)

        # then it waited on 409 idempotency_key_in_use and then got the first answer
        assert [(r.status, r.code) for r in recorder.retries] == [(409, "idempotency_key_in_use")]
        assert again == first


class TestRetries:
    def test_server_errors_are_retried_with_backoff(self, make_client, ops_key, proxy, recorder):
        client = make_client(ops_key, base=proxy.url)
        proxy.answer(503, times=2)

        me = client.me()

        assert me["role"] == "ops"
        assert [r.status for r in recorder.retries] == [503, 503]
        assert recorder.slept[1] > recorder.slept[0] / 2  # grows (with jitter)

    def test_retries_give_up_with_a_typed_server_error(self, make_client, ops_key, proxy, recorder):
        client = make_client(ops_key, base=proxy.url, max_retries=2)
        recorder.real_sleep = False
        proxy.answer(502, times=5, body=b"<html>Bad gateway</html>")

        with pytest.raises(ServerError) as caught:
            client.me()

        assert caught.value.status == 502
        assert caught.value.type == "server_error"
        assert len(recorder.retries) == 2

    def test_a_client_error_is_not_retried(self, ops, recorder):
        with pytest.raises(NotFound):
            ops.partners.get("prt_nothing")

        assert recorder.retries == []

    def test_an_unreachable_service_is_a_network_error_after_retries(self, make_client, recorder):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        # nothing listens on that port now
        recorder.real_sleep = False
        client = make_client("any.key", base=f"http://127.0.0.1:{port}", max_retries=3)

        with pytest.raises(NetworkError):
            client.partners.create(kind="creator", name="Nobody home")

        assert len(recorder.retries) == 3
        assert len({r.idempotency_key for r in recorder.retries}) == 1

    def test_429_waits_as_long_as_retry_after_says(self, ops, recorder, settings):
        settings.REST_FRAMEWORK = {
            **django_settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"api_key": "2/s"},
        }

        answers = [ops.me()["role"] for _ in range(3)]

        assert answers == ["ops", "ops", "ops"]
        throttled = [r for r in recorder.retries if r.status == 429]
        assert throttled, "the third call within a second is throttled"
        assert all(r.retry_after >= 1 for r in throttled)
        assert all(r.delay >= r.retry_after for r in throttled)

    def test_429_without_retries_left_is_rate_limited(self, make_client, ops_key, settings):
        settings.REST_FRAMEWORK = {
            **django_settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"api_key": "1/min"},
        }
        client = make_client(ops_key, max_retries=0)
        client.me()

        with pytest.raises(RateLimited) as caught:
            client.me()

        assert caught.value.status == 429
        assert caught.value.code == "throttled"
        assert caught.value.retry_after > 0


class TestPagination:
    def test_iterate_follows_next_across_pages_keeping_filters(self, ops):
        made = {ops.partners.create(kind="creator", name=f"Creator {i}")["id"] for i in range(7)}
        ops.partners.create(kind="brand", name="Not a creator")

        pages = []
        seen = []
        for partner in ops.iterate("/partners", kind="creator", page_size=3):
            seen.append(partner)
            pages.append(ops.last_response.url)

        assert {p["id"] for p in seen} == made
        assert len(seen) == 7  # no duplicates
        assert {p["kind"] for p in seen} == {"creator"}
        assert len(set(pages)) == 3  # three pages of at most 3

    def test_the_resource_list_helper_iterates_too(self, ops):
        for i in range(4):
            ops.partners.create(kind="brand", name=f"Brand {i}")

        brands = list(ops.partners.list(kind="brand", page_size=2))

        assert sorted(b["name"] for b in brands) == ["Brand 0", "Brand 1", "Brand 2", "Brand 3"]


class TestResources:
    """The typed helpers reach the contract's paths and keep amounts as strings."""

    def test_an_order_through_its_life_and_its_money(self, shop):
        order = shop.order(quantity=2, shipping_amount="4.99", tax_amount="1.00")
        assert order["total"] == "45.97"  # 2 x 19.99 + 4.99 + 1.00, from the catalog

        shop.host.orders.pay(order["id"], amount=order["total"], payment_reference="ch_1")
        shop.fulfiller.orders.accept(order["id"])
        shop.fulfiller.orders.ship(order["id"], carrier="UPS", tracking_number="1Z1")
        delivered = shop.fulfiller.orders.deliver(order["id"])
        refund = shop.host.orders.refund(
            order["id"], lines=[{"line": order["lines"][0]["id"], "quantity": 1}], reason="return"
        )

        assert delivered["status"] == "delivered"
        assert refund["amount"] == "19.99"
        assert [r["id"] for r in shop.host.orders.refunds(order["id"])] == [refund["id"]]
        history = [e["type"] for e in shop.host.orders.events(order["id"])]
        assert {"created", "paid", "accepted", "shipped", "delivered", "refunded"} <= set(history)
        totals = shop.brand.orders.breakdown(order["id"])["totals"]
        assert (totals["paid"], totals["refunded"]) == ("45.97", "19.99")
        assert [o["id"] for o in shop.creator.orders.list()] == []  # sold without a creator

    def test_finance_reads_the_ledger_balances_and_reports_as_json_and_csv(self, shop):
        order = shop.order()
        shop.host.orders.pay(order["id"], amount=order["total"], payment_reference="ch_1")
        today = date.today().isoformat()

        entries = list(shop.finance.ledger.entries())
        report = shop.finance.reports.commissions(
            date_from=today, date_to=today, currency="USD", group_by="brand"
        )
        csv_text = shop.finance.reports.commissions_csv(
            date_from=today, date_to=today, currency="USD", group_by="brand"
        )
        brand_balance = shop.finance.balances(partner=shop.brand.partner["id"])

        assert [e["kind"] for e in entries] == ["sale"]
        assert report["totals"]["gross_merchandise_value"] == "19.99"
        assert "gross_merchandise_value" in csv_text.splitlines()[0]
        assert shop.brand.partner["id"] in csv_text
        assert brand_balance[0]["currency"] == "USD"
        assert brand_balance == shop.brand.balances()

    def test_settlement_lines_as_json_and_csv_and_a_failed_payout(self, shop, settings):
        settings.RETURN_WINDOW_DAYS = 0
        order = shop.order()
        shop.host.orders.pay(order["id"], amount=order["total"], payment_reference="ch_1")
        shop.fulfiller.orders.accept(order["id"])
        shop.fulfiller.orders.ship(order["id"], carrier="UPS", tracking_number="1Z1")
        shop.fulfiller.orders.deliver(order["id"])
        call_command("close_return_windows", stdout=io.StringIO())  # what beat does

        run = shop.finance.settlements.run(period_end=date.today(), currency="USD")
        settlements = list(shop.finance.settlements.list(run=run["id"]))
        brand = next(s for s in settlements if s["partner"] == shop.brand.partner["id"])
        lines = list(shop.brand.settlements.lines(brand["id"]))
        csv_text = shop.brand.settlements.lines_csv(brand["id"])
        failed = shop.finance.settlements.mark_failed(brand["id"], reason="account closed")

        assert shop.finance.settlements.get_run(run["id"])["status"] == "completed"
        assert len(lines) == len(csv_text.strip().splitlines()) - 1
        assert failed["status"] == "failed"
        assert shop.brand.balances()[0]["available"] == brand["net_payout"]
