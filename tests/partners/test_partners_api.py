"""Partner management by ops: create, list, filter, suspend; enrollments; roles and tenancy."""

import pytest

from partners.authentication import Caller
from partners.models import Partner
from tests import factories

pytestmark = pytest.mark.django_db


def test_ops_onboards_a_brand_with_its_fulfillment_partner(ops, fulfillment):
    response = ops.post(
        "/api/v1/partners",
        {"kind": "brand", "name": "Glow", "fulfillment_partner": fulfillment.id},
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("prt_")
    assert body["fulfillment_partner"] == fulfillment.id
    assert body["status"] == "active"
    assert body["brand_access"] is None
    assert Partner.objects.get(pk=body["id"]).fulfillment_partner_id == fulfillment.id


def test_a_host_app_defaults_to_open_brand_access(ops):
    body = ops.post("/api/v1/partners", {"kind": "host_app", "name": "TikTok"}).json()

    assert body["brand_access"] == "open"
    assert body["enrolled_brands"] is None


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"kind": "brand"}, "name"),
        ({"kind": "nope", "name": "X"}, "kind"),
        ({"kind": "brand", "name": "X", "brand_access": "open"}, "brand_access"),
        ({"kind": "creator", "name": "X", "fulfillment_partner": "prt_x"}, "fulfillment_partner"),
    ],
)
def test_invalid_partner_is_a_400_naming_the_field(ops, payload, attr):
    response = ops.post("/api/v1/partners", payload)

    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert attr in [e["attr"] for e in response.json()["errors"]]


def test_a_brands_fulfillment_partner_must_be_a_fulfillment_partner(ops, creator):
    response = ops.post(
        "/api/v1/partners", {"kind": "brand", "name": "B", "fulfillment_partner": creator.id}
    )

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "fulfillment_partner"


def test_list_filters_by_kind_and_status(ops, host_app, brand, creator):
    suspended = factories.CreatorFactory(status="suspended")

    creators = ops.get("/api/v1/partners", {"kind": "creator"}).json()
    active_creators = ops.get("/api/v1/partners", {"kind": "creator", "status": "active"}).json()

    assert {p["id"] for p in creators["results"]} == {creator.id, suspended.id}
    assert [p["id"] for p in active_creators["results"]] == [creator.id]
    assert set(creators) == {"next", "previous", "results"}


def test_list_is_cursor_paginated(ops):
    factories.CreatorFactory.create_batch(5)

    first = ops.get("/api/v1/partners", {"page_size": 2}).json()
    second = ops.get(first["next"]).json()

    assert len(first["results"]) == 2
    assert len(second["results"]) == 2
    assert not {p["id"] for p in first["results"]} & {p["id"] for p in second["results"]}


@pytest.mark.parametrize("page_size", ["10000", "201", "0", "-1", "null", "abc", ""])
def test_page_size_outside_1_to_200_is_a_400_naming_it(ops, page_size):
    factories.CreatorFactory.create_batch(3)

    response = ops.get("/api/v1/partners", {"page_size": page_size})

    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["code"], error["attr"]) == ("invalid_page_size", "page_size")
    assert "1 to 200" in error["detail"]
    assert len(ops.get("/api/v1/partners", {"page_size": 200}).json()["results"]) == 3


def test_list_runs_a_fixed_number_of_queries(ops, django_assert_max_num_queries):
    host = factories.HostAppFactory(brand_access="invite_only")
    factories.EnrollmentFactory(host_app=host)
    ops.get("/api/v1/partners")  # warm the key's last_used
    with django_assert_max_num_queries(6) as small:
        ops.get("/api/v1/partners")
    for _ in range(20):
        factories.EnrollmentFactory(host_app=factories.HostAppFactory(brand_access="invite_only"))
    with django_assert_max_num_queries(6) as large:
        ops.get("/api/v1/partners", {"page_size": 200})

    assert len(small.captured_queries) == len(large.captured_queries)


def test_enrollments_for_an_invite_only_host_app(ops, brand):
    host = factories.HostAppFactory(brand_access="invite_only")

    created = ops.post(f"/api/v1/partners/{host.id}/enrollments", {"brand": brand.id})
    again = ops.post(f"/api/v1/partners/{host.id}/enrollments", {"brand": brand.id})
    listed = ops.get(f"/api/v1/partners/{host.id}/enrollments").json()["results"]
    detail = ops.get(f"/api/v1/partners/{host.id}").json()
    deleted = ops.delete(f"/api/v1/partners/{host.id}/enrollments?brand={brand.id}")
    after = ops.get(f"/api/v1/partners/{host.id}").json()

    assert created.status_code == 201
    assert again.status_code == 200
    assert [e["brand"] for e in listed] == [brand.id]
    assert detail["enrolled_brands"] == [brand.id]
    assert deleted.status_code == 204
    assert after["enrolled_brands"] == []


def test_only_brands_enroll_and_only_with_host_apps(ops, brand, creator):
    host = factories.HostAppFactory(brand_access="invite_only")

    not_a_brand = ops.post(f"/api/v1/partners/{host.id}/enrollments", {"brand": creator.id})
    not_a_host = ops.post(f"/api/v1/partners/{brand.id}/enrollments", {"brand": brand.id})

    assert not_a_brand.status_code == 400
    assert not_a_host.status_code == 400


@pytest.mark.parametrize("who", ["finance", "host_client", "brand_client", "creator_client"])
def test_only_ops_writes_partners(request, who):
    client = request.getfixturevalue(who)

    response = client.post("/api/v1/partners", {"kind": "creator", "name": "X"})

    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"


@pytest.mark.parametrize("who", ["host_client", "fulfillment_client", "brand_client"])
def test_partners_cannot_issue_keys_nor_see_partners_they_do_not_deal_with(request, who):
    client = request.getfixturevalue(who)
    stranger = factories.CreatorFactory()

    assert client.post(f"/api/v1/partners/{stranger.id}/api-keys", {}).status_code == 403
    assert client.get(f"/api/v1/partners/{stranger.id}").status_code == 404
    assert stranger.id not in [p["id"] for p in client.get("/api/v1/partners").json()["results"]]


def test_finance_reads_partners_but_cannot_issue_keys(finance, creator):
    assert finance.get(f"/api/v1/partners/{creator.id}").status_code == 200
    assert finance.post(f"/api/v1/partners/{creator.id}/api-keys", {}).status_code == 403


def test_unknown_partner_is_a_json_404(ops):
    response = ops.get("/api/v1/partners/prt_doesnotexist")

    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"


def test_put_is_not_allowed(ops, creator):
    response = ops.put(f"/api/v1/partners/{creator.id}", {"name": "X"})

    assert response.status_code == 405
    assert response.json()["type"] == "client_error"


def test_tenancy_queryset_hides_other_partners(host_app, brand):
    caller = Caller(api_key_id="key_x", partner=host_app)

    assert list(Partner.objects.visible_to(caller)) == [host_app]
    assert Partner.objects.visible_to(Caller(api_key_id="k", role="ops")).count() == 3
