"""The chart page opened with what finance has: a finance key asks for a short-lived signed link."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from partners.models import APIKey

pytestmark = pytest.mark.django_db


def _link(finance, **body) -> str:
    response = finance.post("/api/v1/reports/chart-links", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["url"]


def test_a_finance_key_gets_a_link_that_opens_the_chart_without_a_login(finance, client, scenario):
    url = _link(finance, date_from="2026-03-01", date_to="2026-03-31", currency="USD")

    page = client.get(url)  # a browser: no key, no admin session

    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "11.60 USD" in html  # March's commission, as the chart shows it
    assert 'name="token"' in html  # the page's own form keeps working with the link


def test_a_link_expires_is_bound_to_its_key_and_cannot_be_forged(finance, client, db):
    url = _link(finance)

    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        expired = client.get(url)
    forged = client.get(url[:-3] + "abc")

    assert expired.status_code == 403
    assert expired.json()["errors"][0]["code"] == "chart_link_invalid"
    assert forged.status_code == 403


def test_a_revoked_key_takes_its_links_with_it(finance, client, db):
    url = _link(finance)
    APIKey.objects.filter(prefix=finance.key.split(".")[0]).update(revoked=True)

    assert client.get(url).status_code == 403


@pytest.mark.parametrize("who", ["ops", "host_client"])
def test_only_finance_gets_links(request, who):
    response = request.getfixturevalue(who).post("/api/v1/reports/chart-links", {}, format="json")

    assert response.status_code == 403


def test_a_date_to_in_the_first_days_of_year_one_is_not_a_server_error(finance, client, db):
    url = _link(finance)

    page = client.get(url + "&date_to=0001-01-10")

    assert page.status_code == 200  # the chart starts at 0001-01-01, as far back as dates go
    assert 'value="0001-01-01"' in page.content.decode()
