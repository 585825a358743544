"""The order benchmark's baseline endpoint: mounted only by bench/urls.py (bench/settings.py), never
by production's URL conf, and it inserts a row."""

import ast
from pathlib import Path

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from bench.endpoints import BENCH_CREDENTIAL
from livecommerce.models import IdempotencyRecord

PATH = "/api/v1/_bench/ping-insert"

bench_urls = override_settings(ROOT_URLCONF="bench.urls")


@pytest.mark.django_db
def test_production_urls_answer_the_path_with_a_json_404():
    response = APIClient().post(PATH, {}, format="json")

    assert response.status_code == 404
    assert response.json()["type"] == "client_error"
    assert not IdempotencyRecord.objects.exists()


def test_production_urls_import_no_bench_code():
    import livecommerce.urls

    tree = ast.parse(Path(livecommerce.urls.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.split(".")[0] == "bench"]


def test_bench_settings_are_productions_with_the_bench_urls():
    import bench.settings
    import livecommerce.settings

    assert bench.settings.ROOT_URLCONF == "bench.urls"
    assert bench.settings.DATABASES == livecommerce.settings.DATABASES
    assert bench.settings.MIDDLEWARE == livecommerce.settings.MIDDLEWARE


@pytest.mark.django_db
@bench_urls
def test_under_the_bench_urls_it_inserts_one_row_without_credentials():
    response = APIClient().post(PATH, {"note": "ping"}, format="json")

    assert response.status_code == 201
    record = IdempotencyRecord.objects.get(pk=response.json()["id"])
    assert record.credential == BENCH_CREDENTIAL
    assert not record.in_progress


@pytest.mark.django_db
@bench_urls
def test_under_the_bench_urls_bad_input_is_a_400():
    response = APIClient().post(PATH, {"note": "x" * 101}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "note"


@pytest.mark.django_db
@bench_urls
def test_under_the_bench_urls_the_rest_of_the_api_is_productions():
    assert APIClient().get("/healthz").status_code == 200
    response = APIClient().get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["type"] == "client_error"


@bench_urls
def test_the_schema_never_lists_it():
    schema = SchemaGenerator().get_schema(request=None, public=True)

    assert not [path for path in schema["paths"] if "_bench" in path]
