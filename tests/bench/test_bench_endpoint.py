"""The order benchmark's baseline endpoint: absent unless BENCH_ENDPOINTS, and it inserts a row."""

import importlib

import pytest
from django.test import override_settings
from django.urls import clear_url_caches
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from bench.endpoints import BENCH_CREDENTIAL
from livecommerce.models import IdempotencyRecord

PATH = "/api/v1/_bench/ping-insert"


@pytest.fixture
def bench_urls():
    """The URLconf as it is with BENCH_ENDPOINTS=true; the normal one again afterwards."""
    import livecommerce.urls

    with override_settings(BENCH_ENDPOINTS=True):
        importlib.reload(livecommerce.urls)
        clear_url_caches()
        yield
    importlib.reload(livecommerce.urls)
    clear_url_caches()


@pytest.mark.django_db
def test_off_by_default_the_path_is_a_json_404():
    response = APIClient().post(PATH, {}, format="json")

    assert response.status_code == 404
    assert response.json()["type"] == "client_error"
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_when_on_it_inserts_one_row_without_credentials(bench_urls):
    response = APIClient().post(PATH, {"note": "ping"}, format="json")

    assert response.status_code == 201
    record = IdempotencyRecord.objects.get(pk=response.json()["id"])
    assert record.credential == BENCH_CREDENTIAL
    assert not record.in_progress


@pytest.mark.django_db
def test_when_on_bad_input_is_a_400(bench_urls):
    response = APIClient().post(PATH, {"note": "x" * 101}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "note"


def test_the_schema_never_lists_it(bench_urls):
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert not [path for path in schema["paths"] if "_bench" in path]
