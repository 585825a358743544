"""The directory: a partner lists the partners it deals with (contract: "For integrators")."""

import pytest

from tests import factories
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ENTRY = {"id", "kind", "name"}


def _listed(client) -> dict[str, dict]:
    response = client.get("/api/v1/partners")
    assert response.status_code == 200, response.json()
    return {p["id"]: p for p in response.json()["results"]}


def test_a_host_app_sees_its_brands_their_fulfillers_and_its_creators_only():
    # given an invite-only host app with one enrolled brand and a creator on its show
    fulfiller = factories.FulfillmentFactory()
    enrolled = factories.BrandFactory(fulfillment_partner=fulfiller)
    other_brand = factories.BrandFactory(fulfillment_partner=factories.FulfillmentFactory())
    host = factories.HostAppFactory(brand_access="invite_only")
    factories.EnrollmentFactory(host_app=host, brand=enrolled)
    session = factories.LiveSessionFactory(producer=host)
    stranger_creator = factories.CreatorFactory()
    client = client_for(partner=host)

    # when it reads the directory
    listed = _listed(client)

    # then it sees who it deals with, as id, kind and name only
    assert set(listed) == {enrolled.pk, fulfiller.pk, session.creator_id}
    assert all(set(entry) == ENTRY for entry in listed.values())
    assert listed[enrolled.pk] == {"id": enrolled.pk, "kind": "brand", "name": enrolled.name}
    assert client.get(f"/api/v1/partners/{enrolled.pk}").json() == listed[enrolled.pk]
    for hidden in (other_brand, stranger_creator):
        assert client.get(f"/api/v1/partners/{hidden.pk}").status_code == 404
    # its own record in full
    own = client.get(f"/api/v1/partners/{host.pk}").json()
    assert own["brand_access"] == "invite_only" and "created" in own


def test_an_open_host_app_sees_every_brand():
    brands = factories.BrandFactory.create_batch(2)
    client = client_for(partner=factories.HostAppFactory(brand_access="open"))

    listed = _listed(client)

    assert {b.pk for b in brands} <= set(listed)


def test_fulfillment_brand_and_creator_see_their_counterparts():
    fulfiller = factories.FulfillmentFactory()
    brand = factories.BrandFactory(fulfillment_partner=fulfiller)
    creator = factories.CreatorFactory()
    host = factories.HostAppFactory()
    factories.LiveSessionFactory(producer=fulfiller, creator=creator, host_apps=[host])
    factories.HostAppFactory()  # deals with nobody here

    assert set(_listed(client_for(partner=fulfiller))) == {brand.pk, host.pk}
    assert set(_listed(client_for(partner=brand))) == {fulfiller.pk}
    assert set(_listed(client_for(partner=creator))) == {host.pk}


def test_staff_keep_the_full_view(ops, finance):
    partner = factories.HostAppFactory()

    for client in (ops, finance):
        listed = _listed(client)
        assert "created" in listed[partner.pk] and "status" in listed[partner.pk]


def test_products_embed_their_brand_on_request(fulfillment_client, brand):
    product = factories.ProductFactory(brand=brand)

    plain = fulfillment_client.get(f"/api/v1/products/{product.pk}").json()
    expanded = fulfillment_client.get(f"/api/v1/products/{product.pk}?expand=brand").json()
    listed = fulfillment_client.get("/api/v1/products?expand=brand").json()["results"]

    assert plain["brand"] == brand.pk
    assert expanded["brand"] == {"id": brand.pk, "name": brand.name}
    assert listed[0]["brand"] == {"id": brand.pk, "name": brand.name}


@pytest.mark.parametrize(
    "param, value",
    [
        ("status", "suspended"),
        ("fulfillment_partner", "prt_x"),
        ("created_after", "2026-01-01T00:00:00Z"),
        ("created_before", "2026-01-01T00:00:00Z"),
    ],
)
def test_a_partner_may_filter_the_directory_by_kind_and_name_only(param, value):
    fulfiller = factories.FulfillmentFactory()
    brand = factories.BrandFactory(fulfillment_partner=fulfiller, name="Glow")
    client = client_for(partner=factories.HostAppFactory(brand_access="open"))

    refused = client.get("/api/v1/partners", {param: value})
    one = client.get(f"/api/v1/partners/{brand.pk}", {param: value})
    by_kind_and_name = client.get("/api/v1/partners", {"kind": "brand", "name": "glo"})

    for response in (refused, one):
        assert response.status_code == 400, response.json()
        [error] = response.json()["errors"]
        assert (error["code"], error["attr"]) == ("filter_not_allowed", param)
    assert by_kind_and_name.status_code == 200
    assert [p["id"] for p in by_kind_and_name.json()["results"]] == [brand.pk]


def test_staff_keep_every_filter(ops):
    suspended = factories.HostAppFactory(status="suspended")

    response = ops.get("/api/v1/partners", {"status": "suspended"})

    assert [p["id"] for p in response.json()["results"]] == [suspended.pk]
