"""API-key authentication: valid, missing, wrong, revoked, suspended partner."""

import pytest
from django.core.management import call_command

from partners.choices import PartnerStatus
from partners.models import APIKey
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def test_valid_key_identifies_the_partner(host_client, host_app):
    response = host_client.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["type"] == "partner"
    assert response.json()["partner"]["id"] == host_app.id
    assert response.json()["api_key"]["prefix"] == host_client.key.split(".")[0]


def test_staff_key_identifies_the_role(finance):
    body = finance.get("/api/v1/me").json()

    assert body["type"] == "staff"
    assert body["role"] == "finance"
    assert body["partner"] is None


def test_missing_key_is_401_with_www_authenticate(api_client):
    response = api_client.get("/api/v1/me")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json() == {
        "type": "client_error",
        "errors": [
            {
                "code": "not_authenticated",
                "detail": "No API key was sent: send it as the header "
                "'Authorization: Bearer <key>'.",
                "attr": None,
            }
        ],
    }


@pytest.mark.parametrize(
    "header",
    ["Bearer nope", "Bearer abc.def", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz"],
)
def test_wrong_key_is_401(api_client, header, host_client):
    api_client.credentials(HTTP_AUTHORIZATION=header)

    response = api_client.get("/api/v1/me")

    assert response.status_code == 401
    assert response.json()["type"] == "client_error"


def test_a_key_with_the_right_prefix_but_wrong_secret_is_401(api_client, host_client):
    prefix = host_client.key.split(".")[0]
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {prefix}.not-the-secret")

    assert api_client.get("/api/v1/me").status_code == 401


def test_revoked_key_is_401(ops, host_app):
    partner_client = client_for(partner=host_app)
    key_id = partner_client.get("/api/v1/me").json()["api_key"]["id"]

    assert ops.delete(f"/api/v1/api-keys/{key_id}").status_code == 204
    response = partner_client.get("/api/v1/me")

    assert response.status_code == 401
    assert APIKey.objects.get(pk=key_id).revoked_at is not None


def test_suspended_partners_keys_answer_403_and_work_again_after_reactivation(ops, host_client):
    partner_id = host_client.partner.id

    ops.patch(f"/api/v1/partners/{partner_id}", {"status": PartnerStatus.SUSPENDED})
    suspended = host_client.get("/api/v1/me")
    ops.patch(f"/api/v1/partners/{partner_id}", {"status": PartnerStatus.ACTIVE})

    assert suspended.status_code == 403
    assert suspended.json()["errors"][0]["code"] == "permission_denied"
    assert host_client.get("/api/v1/me").status_code == 200


def test_keys_are_stored_only_as_a_hash(ops, host_app):
    response = ops.post(f"/api/v1/partners/{host_app.id}/api-keys", {"name": "prod"})

    raw = response.json()["key"]
    stored = APIKey.objects.get(pk=response.json()["id"])
    assert response.status_code == 201
    assert set(response.json()) >= {"id", "key", "prefix", "created"}
    assert raw.startswith(stored.prefix + ".")
    assert raw not in stored.hashed_key
    assert stored.hashed_key.startswith("sha512$$")
    # The key is shown once: listing keys never shows it again.
    listed = ops.get(f"/api/v1/partners/{host_app.id}/api-keys").json()["results"]
    assert [k["id"] for k in listed] == [stored.id]
    assert "key" not in listed[0]


def test_last_used_is_recorded(host_client):
    host_client.get("/api/v1/me")

    key = APIKey.objects.get(prefix=host_client.key.split(".")[0])
    assert key.last_used is not None


def test_create_staff_key_prints_only_a_working_key(capsys, api_client):
    call_command("create_staff_key", role="finance", name="Fiona")

    out = capsys.readouterr().out
    assert out.count("\n") == 1
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {out.strip()}")
    body = api_client.get("/api/v1/me").json()
    assert body["role"] == "finance"
    assert body["api_key"]["name"] == "Fiona"
