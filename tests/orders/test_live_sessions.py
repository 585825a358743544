"""Live sessions: who produces them, where they are broadcast, start and end with events."""

import pytest

from orders.models import LiveSession
from partners.choices import BrandAccess
from partners.models import Event
from tests import factories
from tests.conftest import client_for
from tests.orders.helpers import codes

pytestmark = pytest.mark.django_db

START = "2026-12-01T18:00:00Z"


def _create(client, **fields):
    return client.post(
        "/api/v1/live-sessions",
        {"title": "Glow-up live", "scheduled_start": START, **fields},
        format="json",
    )


def test_a_host_app_schedules_a_show_on_itself(host_client, host_app, creator, product):
    response = _create(host_client, creator=creator.pk, products=[product.pk])

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("lvs_")
    assert body["status"] == "scheduled"
    assert body["producer"] == host_app.pk
    assert body["host_apps"] == [host_app.pk]
    assert body["products"] == [product.pk]
    assert body["creator"] == creator.pk
    assert body["scheduled_start"] == "2026-12-01T18:00:00.000000Z"


def test_a_host_app_cannot_broadcast_on_another_host_app(host_client):
    other = factories.HostAppFactory()

    response = _create(host_client, host_apps=[other.pk])

    assert response.status_code == 400
    assert codes(response) == ["invalid_reference"]


def test_a_fulfillment_partner_broadcasts_on_several_host_apps(
    fulfillment_client, fulfillment, host_app, creator, product
):
    brand_site = factories.HostAppFactory(name="Brand's own site")

    response = _create(
        fulfillment_client,
        creator=creator.pk,
        products=[product.pk],
        host_apps=[host_app.pk, brand_site.pk],
    )

    assert response.status_code == 201, response.json()
    assert response.json()["producer"] == fulfillment.pk
    assert response.json()["host_apps"] == sorted([host_app.pk, brand_site.pk])
    # both host apps see it
    for partner in (host_app, brand_site):
        listed = client_for(partner=partner).get("/api/v1/live-sessions").json()["results"]
        assert [s["id"] for s in listed] == [response.json()["id"]]


def test_a_fulfillment_partner_must_name_host_apps(fulfillment_client):
    response = _create(fulfillment_client)

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "host_apps"


def test_every_host_app_must_be_allowed_to_sell_every_brand_shown(
    fulfillment_client, host_app, product
):
    invite_only = factories.HostAppFactory(brand_access=BrandAccess.INVITE_ONLY)

    refused = _create(
        fulfillment_client, products=[product.pk], host_apps=[host_app.pk, invite_only.pk]
    )
    factories.EnrollmentFactory(host_app=invite_only, brand=product.brand)
    accepted = _create(
        fulfillment_client, products=[product.pk], host_apps=[host_app.pk, invite_only.pk]
    )

    assert refused.status_code == 422
    assert codes(refused) == ["brand_not_enrolled"]
    assert accepted.status_code == 201


def test_products_and_creators_must_exist_and_be_visible(fulfillment_client, host_app):
    foreign_product = factories.ProductFactory()  # a brand this fulfiller does not serve

    bad_product = _create(
        fulfillment_client, products=[foreign_product.pk], host_apps=[host_app.pk]
    )
    bad_creator = _create(fulfillment_client, creator=host_app.pk, host_apps=[host_app.pk])

    assert bad_product.status_code == 400
    assert bad_product.json()["errors"][0]["attr"] == "products.0"
    assert bad_creator.status_code == 400
    assert bad_creator.json()["errors"][0]["attr"] == "creator"
    assert not LiveSession.objects.exists()


@pytest.mark.parametrize("role", ["brand", "creator", "ops", "finance"])
def test_only_host_apps_and_fulfillment_partners_schedule_shows(role, roles, live_session):
    client = roles[role]

    assert _create(client).status_code == 403
    for action in ("start", "end"):
        response = client.post(f"/api/v1/live-sessions/{live_session.pk}/{action}")
        assert response.status_code == 403


def test_start_and_end_follow_the_table_and_tell_everyone(
    host_client, host_app, creator, brand, fulfillment, live_session
):
    url = f"/api/v1/live-sessions/{live_session.pk}"

    assert codes(host_client.post(f"{url}/end")) == ["invalid_transition"]
    started = host_client.post(f"{url}/start")
    again = host_client.post(f"{url}/start")
    ended = host_client.post(f"{url}/end")
    after = [host_client.post(f"{url}/{action}") for action in ("start", "end")]

    assert started.status_code == 200
    assert started.json()["status"] == "live"
    assert started.json()["started_at"] is not None
    assert again.status_code == 409
    assert codes(again) == ["invalid_transition"]
    assert ended.json()["status"] == "ended"
    assert ended.json()["ended_at"] is not None
    assert [r.status_code for r in after] == [409, 409]

    events = Event.objects.filter(object_id=live_session.pk).order_by("sequence")
    assert [(e.type, e.sequence) for e in events] == [
        ("live_session.started", 1),
        ("live_session.ended", 2),
    ]
    assert {r.partner_id for r in events[0].recipients.all()} == {
        host_app.pk,
        creator.pk,
        brand.pk,
        fulfillment.pk,
    }
    assert events[1].data["status"] == "ended"
    # one representation: each event carries what the API answered for that move
    assert events[0].data == started.json()
    assert events[1].data == ended.json()


def test_only_the_producer_starts_its_show(fulfillment_client, host_client, host_app, product):
    session = _create(fulfillment_client, products=[product.pk], host_apps=[host_app.pk]).json()

    response = host_client.post(f"/api/v1/live-sessions/{session['id']}/start")

    assert response.status_code == 403
    assert LiveSession.objects.get(pk=session["id"]).status == "scheduled"


def test_outsiders_get_404(outsiders, live_session):
    for client in outsiders.values():
        assert client.get(f"/api/v1/live-sessions/{live_session.pk}").status_code == 404
        assert client.get("/api/v1/live-sessions").json()["results"] == []
    response = outsiders["host_app"].post(f"/api/v1/live-sessions/{live_session.pk}/start")
    assert response.status_code == 404


def test_the_parties_see_the_show(roles, live_session):
    for client in roles.values():
        response = client.get(f"/api/v1/live-sessions/{live_session.pk}")
        assert response.status_code == 200


def test_filters(host_client, host_app, creator):
    live = factories.LiveSessionFactory(producer=host_app, creator=creator, status="live")
    factories.LiveSessionFactory(producer=host_app)
    elsewhere = factories.HostAppFactory()
    broadcast_elsewhere = factories.LiveSessionFactory(
        producer=host_app, host_apps=[host_app, elsewhere]
    )

    def ids(query):
        return [
            s["id"] for s in host_client.get(f"/api/v1/live-sessions?{query}").json()["results"]
        ]

    assert ids("status=live") == [live.pk]
    assert ids(f"creator={creator.pk}") == [live.pk]
    assert ids(f"host_app={elsewhere.pk}") == [broadcast_elsewhere.pk]
    assert len(ids(f"host_app={host_app.pk}")) == 3


@pytest.mark.parametrize("size", [2, 30])
def test_the_list_runs_a_fixed_number_of_queries(
    size, fulfillment_client, fulfillment, product, django_assert_num_queries
):
    host_apps = factories.HostAppFactory.create_batch(2)
    for _ in range(size):
        session = factories.LiveSessionFactory(producer=fulfillment, host_apps=host_apps)
        session.products.set([product])
    fulfillment_client.get("/api/v1/live-sessions")  # the key's first use is recorded once

    # the API key, the page, its products, its host apps
    with django_assert_num_queries(4):
        response = fulfillment_client.get("/api/v1/live-sessions")

    assert len(response.json()["results"]) == size
    assert all(len(s["host_apps"]) == 2 for s in response.json()["results"])
