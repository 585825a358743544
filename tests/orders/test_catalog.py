"""Products: who writes a brand's catalog, who reads it, and exact prices per currency."""

import pytest

from orders.models import Product
from partners.choices import BrandAccess
from tests import factories
from tests.conftest import client_for
from tests.orders.helpers import codes

pytestmark = pytest.mark.django_db

LIPSTICK = {
    "sku": "LIP-RED-01",
    "title": "Velvet lipstick",
    "category": "beauty",
    "price": "19.99",
    "currency": "USD",
    "inventory": 12,
}


def test_a_brand_adds_to_its_own_catalog(brand_client, brand):
    response = brand_client.post("/api/v1/products", LIPSTICK, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["id"].startswith("prd_")
    assert body["brand"] == brand.pk
    assert body["price"] == "19.99"
    assert body["currency"] == "USD"
    assert body["inventory"] == 12
    assert Product.objects.get(pk=body["id"]).price == 1999


def test_a_brand_cannot_add_to_another_brands_catalog(brand_client):
    other = factories.BrandFactory()

    response = brand_client.post("/api/v1/products", {**LIPSTICK, "brand": other.pk}, format="json")

    assert response.status_code == 400
    assert codes(response) == ["invalid_reference"]
    assert not Product.objects.exists()


def test_a_fulfillment_partner_names_one_of_its_brands(fulfillment_client, brand):
    unnamed = fulfillment_client.post("/api/v1/products", LIPSTICK, format="json")
    not_its_brand = fulfillment_client.post(
        "/api/v1/products", {**LIPSTICK, "brand": factories.BrandFactory().pk}, format="json"
    )
    its_brand = fulfillment_client.post(
        "/api/v1/products", {**LIPSTICK, "brand": brand.pk}, format="json"
    )

    assert unnamed.status_code == 400
    assert unnamed.json()["errors"][0]["attr"] == "brand"
    assert not_its_brand.status_code == 400
    assert codes(not_its_brand) == ["invalid_reference"]
    assert its_brand.status_code == 201
    assert its_brand.json()["brand"] == brand.pk


@pytest.mark.parametrize("role", ["host_app", "creator", "ops", "finance"])
def test_only_brands_and_fulfillment_partners_write_the_catalog(role, roles, product):
    created = roles[role].post("/api/v1/products", LIPSTICK, format="json")
    updated = roles[role].patch(f"/api/v1/products/{product.pk}", {"inventory": 1}, format="json")

    assert created.status_code == 403
    assert updated.status_code == 403
    product.refresh_from_db()
    assert product.inventory == 100


def test_a_sku_is_unique_per_brand(brand_client, fulfillment_client, brand):
    first = brand_client.post("/api/v1/products", LIPSTICK, format="json")
    again = fulfillment_client.post(
        "/api/v1/products", {**LIPSTICK, "brand": brand.pk}, format="json"
    )
    other_brand = client_for(partner=factories.BrandFactory()).post(
        "/api/v1/products", LIPSTICK, format="json"
    )

    assert first.status_code == 201
    assert again.status_code == 409
    assert codes(again) == ["duplicate_sku"]
    assert again.json()["errors"][0]["attr"] == "sku"
    assert other_brand.status_code == 201


def test_renaming_a_sku_onto_another_is_409(brand_client):
    brand_client.post("/api/v1/products", LIPSTICK, format="json")
    second = brand_client.post(
        "/api/v1/products", {**LIPSTICK, "sku": "LIP-PNK-01"}, format="json"
    ).json()

    response = brand_client.patch(
        f"/api/v1/products/{second['id']}", {"sku": "LIP-RED-01"}, format="json"
    )

    assert response.status_code == 409
    assert codes(response) == ["duplicate_sku"]


class TestMoney:
    @pytest.mark.parametrize(
        ("price", "currency", "shown", "minor"),
        [
            ("19.99", "USD", "19.99", 1999),
            ("19.9", "USD", "19.90", 1990),
            ("1999", "JPY", "1999", 1999),
            ("12.345", "KWD", "12.345", 12345),
            ("0", "USD", "0.00", 0),
        ],
    )
    def test_prices_are_exact_in_their_currency(self, brand_client, price, currency, shown, minor):
        response = brand_client.post(
            "/api/v1/products", {**LIPSTICK, "price": price, "currency": currency}, format="json"
        )

        assert response.status_code == 201, response.json()
        assert response.json()["price"] == shown
        assert Product.objects.get(pk=response.json()["id"]).price == minor

    @pytest.mark.parametrize(
        ("price", "currency", "code"),
        [
            ("19.999", "USD", "too_many_decimal_places"),
            ("1999.5", "JPY", "too_many_decimal_places"),
            ("1.2345", "KWD", "too_many_decimal_places"),
            ("-1.00", "USD", "negative_amount"),
            ("1e3", "USD", "invalid_amount"),
            ("", "USD", "blank"),
            (19.99, "USD", "not_a_string"),
            ("19.99", "usd", "invalid_currency"),
            ("19.99", "XYZ", "invalid_currency"),
        ],
    )
    def test_bad_prices_are_400(self, brand_client, price, currency, code):
        response = brand_client.post(
            "/api/v1/products", {**LIPSTICK, "price": price, "currency": currency}, format="json"
        )

        assert response.status_code == 400, response.json()
        assert codes(response) == [code]
        assert not Product.objects.exists()

    def test_a_new_currency_needs_a_new_price(self, brand_client, product):
        without_price = brand_client.patch(
            f"/api/v1/products/{product.pk}", {"currency": "JPY"}, format="json"
        )
        with_price = brand_client.patch(
            f"/api/v1/products/{product.pk}", {"currency": "JPY", "price": "2500"}, format="json"
        )

        assert without_price.status_code == 400
        assert with_price.status_code == 200
        assert with_price.json()["price"] == "2500"
        assert with_price.json()["currency"] == "JPY"

    def test_a_price_change_is_parsed_in_the_products_currency(self, brand_client, brand):
        yen = factories.ProductFactory(brand=brand, currency="JPY", price=1000)

        bad = brand_client.patch(f"/api/v1/products/{yen.pk}", {"price": "10.5"}, format="json")
        good = brand_client.patch(f"/api/v1/products/{yen.pk}", {"price": "1050"}, format="json")

        assert bad.status_code == 400
        assert codes(bad) == ["too_many_decimal_places"]
        assert good.json()["price"] == "1050"


def test_the_fulfillment_partner_sets_inventory(fulfillment_client, product):
    response = fulfillment_client.patch(
        f"/api/v1/products/{product.pk}", {"inventory": 7, "title": "Renamed"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["inventory"] == 7
    assert response.json()["title"] == "Renamed"


def test_negative_inventory_is_400(fulfillment_client, product):
    response = fulfillment_client.patch(
        f"/api/v1/products/{product.pk}", {"inventory": -1}, format="json"
    )

    assert response.status_code == 400


class TestWhoSeesWhat:
    def test_an_open_host_app_sees_every_brands_products(self, host_client, product):
        other = factories.ProductFactory()

        ids = {p["id"] for p in host_client.get("/api/v1/products").json()["results"]}

        assert ids == {product.pk, other.pk}

    def test_an_invite_only_host_app_sees_only_enrolled_brands(self, product):
        host_app = factories.HostAppFactory(brand_access=BrandAccess.INVITE_ONLY)
        enrolled = factories.ProductFactory()
        factories.EnrollmentFactory(host_app=host_app, brand=enrolled.brand)
        client = client_for(partner=host_app)

        listed = {p["id"] for p in client.get("/api/v1/products").json()["results"]}

        assert listed == {enrolled.pk}
        assert client.get(f"/api/v1/products/{enrolled.pk}").status_code == 200
        assert client.get(f"/api/v1/products/{product.pk}").status_code == 404

    def test_another_brand_or_fulfiller_gets_404(self, outsiders, product):
        for role in ("brand", "fulfillment"):
            client = outsiders[role]
            assert client.get(f"/api/v1/products/{product.pk}").status_code == 404
            patched = client.patch(
                f"/api/v1/products/{product.pk}", {"inventory": 0}, format="json"
            )
            assert patched.status_code == 404
            assert client.get("/api/v1/products").json()["results"] == []
        product.refresh_from_db()
        assert product.inventory == 100

    def test_creators_do_not_read_the_catalog(self, creator_client, product):
        assert creator_client.get("/api/v1/products").status_code == 403

    def test_staff_read_everything(self, ops, finance, product):
        for client in (ops, finance):
            assert client.get(f"/api/v1/products/{product.pk}").status_code == 200


def test_filters(brand_client, brand):
    shoe = factories.ProductFactory(brand=brand, category="shoes", currency="EUR", sku="SH-1")
    factories.ProductFactory(brand=brand, category="beauty", currency="USD", sku="LP-1")
    factories.ProductFactory(category="shoes")  # another brand's

    def ids(query):
        response = brand_client.get(f"/api/v1/products?{query}")
        assert response.status_code == 200
        return [p["id"] for p in response.json()["results"]]

    assert ids("category=shoes") == [shoe.pk]
    assert ids("currency=EUR") == [shoe.pk]
    assert ids("sku=SH-1") == [shoe.pk]
    assert len(ids(f"brand={brand.pk}")) == 2


@pytest.mark.parametrize("size", [2, 30])
def test_the_list_runs_a_fixed_number_of_queries(size, host_client, django_assert_num_queries):
    factories.ProductFactory.create_batch(size)
    host_client.get("/api/v1/products")  # the key's first use is recorded once

    # the API key (with its partner), then the page
    with django_assert_num_queries(2):
        response = host_client.get("/api/v1/products")

    assert len(response.json()["results"]) == size
