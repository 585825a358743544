"""The finance chart page: commission by day as server-rendered SVG, behind the admin login."""

import xml.etree.ElementTree as ET

import pytest
from django.contrib.auth.models import User

URL = "/api/v1/reports/commissions/chart"
SVG = "{http://www.w3.org/2000/svg}"


def svg_of(response) -> ET.Element:
    html = response.content.decode()
    start, end = html.index("<svg"), html.index("</svg>") + len("</svg>")
    return ET.fromstring(html[start:end])  # noqa: S314 - our own page, not untrusted input


def test_the_chart_has_one_bar_per_day_with_data(client, finance_user, scenario):
    client.force_login(finance_user)

    response = client.get(
        URL, {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD"}
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    svg = svg_of(response)
    bars = [rect for rect in svg.iter(f"{SVG}rect") if "bar" in rect.get("class", "").split()]
    # sales on 03-02 and 03-03, refunds on 03-05: three days with data, one bar each
    assert [(bar.get("data-day"), bar.get("data-amount")) for bar in bars] == [
        ("2026-03-02", "13.60"),
        ("2026-03-03", "8.00"),
        ("2026-03-05", "-10.00"),
    ]
    # the biggest day is the tallest bar; the refund day goes below the zero line
    heights = [int(bar.get("height")) for bar in bars]
    assert heights[0] > heights[1] > 0 and heights[2] > 0
    assert "negative" in bars[2].get("class")
    assert all(bar.find(f"{SVG}title") is not None for bar in bars)
    # no scripts, nothing fetched from elsewhere
    html = response.content.decode()
    assert "<script" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html


def test_the_chart_shows_the_period_totals(client, finance_user, scenario):
    client.force_login(finance_user)

    html = client.get(
        URL, {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD"}
    ).content.decode()

    assert "11.60 USD" in html  # platform commission over March, net of the 03-05 refunds
    assert "269.98 USD" in html


def test_a_period_without_data_draws_no_bars(client, finance_user, db):
    client.force_login(finance_user)

    response = client.get(URL, {"date_from": "2025-01-01", "date_to": "2025-01-31"})

    assert response.status_code == 200
    assert not [r for r in svg_of(response).iter(f"{SVG}rect") if "bar" in r.get("class", "")]


def test_bad_parameters_show_the_form_with_errors(client, finance_user):
    client.force_login(finance_user)

    response = client.get(URL, {"date_from": "2026-03-31", "date_to": "2026-03-01"})

    assert response.status_code == 400
    assert "date_to is before date_from" in response.content.decode()


def test_the_chart_needs_the_admin_login(client, db):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_who_may_not_read_the_ledger_are_refused(client, db):
    client.force_login(User.objects.create_user("ops-person", password="pw", is_staff=True))

    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("who", ["finance", "brand_client"])
def test_a_bearer_key_does_not_open_the_chart(request, who, db):
    # the page is for people with an admin login; API keys are for the API
    assert request.getfixturevalue(who).get(URL).status_code == 302
