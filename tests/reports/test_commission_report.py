"""GET /reports/commissions: figures from the ledger, every grouping, CSV, validation, roles."""

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
import yaml
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commissions.choices import AccountPurpose, EntryKind, Share
from commissions.models import LedgerLine
from commissions.reports.commission import GROUP_BY_CHOICES, commission_report
from livecommerce.money import to_decimal_string
from tests.flows import make_order, pay, refund
from tests.reports.conftest import at

URL = "/api/v1/reports/commissions"
FIGURES = (
    "orders",
    "gross_merchandise_value",
    "platform_commission",
    "creator_commission",
    "fulfillment_fees",
    "refunds",
    "net_to_brands",
)
SHARE_FIGURES = {
    Share.PLATFORM_COMMISSION: "platform_commission",
    Share.CREATOR_COMMISSION: "creator_commission",
    Share.FULFILLMENT_FEE: "fulfillment_fees",
    Share.BRAND_NET: "net_to_brands",
}
PERIODS = [("2026-03-01", "2026-03-31"), ("2026-03-02", "2026-03-02"), ("2026-03-05", "2026-04-30")]


def ledger_figures(*, currency: str, date_from: str, date_to: str) -> dict:
    """The report's figures computed line by line from the ledger, as the definitions say."""
    start = datetime.fromisoformat(date_from).replace(tzinfo=UTC)
    end = datetime.fromisoformat(date_to).replace(tzinfo=UTC) + timedelta(days=1)
    figures = dict.fromkeys(FIGURES, 0)
    orders = set()
    for line in LedgerLine.objects.filter(currency=currency, created__gte=start, created__lt=end):
        if line.purpose == AccountPurpose.BUYER_FUNDS_CLEARING:
            if line.share != Share.MERCHANDISE:
                continue
            if line.kind == EntryKind.SALE:
                figures["gross_merchandise_value"] += line.debit
                orders.add(line.order_id)
            elif line.kind == EntryKind.REFUND:
                figures["refunds"] += line.credit
        elif line.kind in (EntryKind.SALE, EntryKind.REFUND) and line.share in SHARE_FIGURES:
            figures[SHARE_FIGURES[line.share]] += line.credit - line.debit
    figures["orders"] = len(orders)
    return {
        name: value if name == "orders" else to_decimal_string(value, currency)
        for name, value in figures.items()
    }


def get_report(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def usd(minor: int) -> str:
    return to_decimal_string(minor, "USD")


@pytest.mark.parametrize("group_by", GROUP_BY_CHOICES)
def test_totals_equal_the_ledger_for_every_grouping(finance, scenario, group_by):
    for date_from, date_to in PERIODS:
        # when finance pulls the report for a period
        report = get_report(
            finance, date_from=date_from, date_to=date_to, currency="USD", group_by=group_by
        )

        # then the totals are the ledger summed directly over the same period
        assert report["totals"] == ledger_figures(
            currency="USD", date_from=date_from, date_to=date_to
        ), (date_from, date_to)
        # and the rows add up to the totals
        for name in FIGURES:
            if name == "orders":
                assert sum(row["orders"] for row in report["rows"]) == report["totals"]["orders"]
            else:
                summed = sum(int(row[name].replace(".", "")) for row in report["rows"])
                assert usd(summed) == report["totals"][name], (date_from, date_to, name)


def test_march_by_day_exact_figures(finance, scenario):
    report = get_report(
        finance, date_from="2026-03-01", date_to="2026-03-31", currency="USD", group_by="day"
    )

    assert report["group_by"] == "day"
    assert report["currency"] == "USD"
    assert (report["date_from"], report["date_to"]) == ("2026-03-01", "2026-03-31")
    rows = {row["group"]: row for row in report["rows"]}
    assert list(rows) == ["2026-03-02", "2026-03-03", "2026-03-05"]
    # 03-02: o1 (50.00 + 19.99 at 8/5/3 %) and o2 (100.00, no creator, no fulfiller)
    assert rows["2026-03-02"] == {
        "group": "2026-03-02",
        "name": "2026-03-02",
        "orders": 2,
        "gross_merchandise_value": "169.99",
        "platform_commission": "13.60",
        "creator_commission": "3.50",
        "fulfillment_fees": "2.10",
        "refunds": "0.00",
        "net_to_brands": "150.79",
    }
    # 03-03 00:00:00 UTC is the next day: o4 (3 x 33.33)
    assert rows["2026-03-03"]["orders"] == 1
    assert rows["2026-03-03"]["gross_merchandise_value"] == "99.99"
    assert rows["2026-03-03"]["platform_commission"] == "8.00"
    # 03-05: refunds only (one 25.00 unit of o1, all of o2), the shares reversed; the release of
    # o1 that day moves nothing in the report
    assert rows["2026-03-05"] == {
        "group": "2026-03-05",
        "name": "2026-03-05",
        "orders": 0,
        "gross_merchandise_value": "0.00",
        "platform_commission": "-10.00",
        "creator_commission": "-1.25",
        "fulfillment_fees": "-0.75",
        "refunds": "125.00",
        "net_to_brands": "-113.00",
    }
    assert report["totals"] == {
        "orders": 3,
        "gross_merchandise_value": "269.98",
        "platform_commission": "11.60",
        "creator_commission": "7.25",
        "fulfillment_fees": "4.35",
        "refunds": "125.00",
        "net_to_brands": "121.78",
    }


def test_a_refund_in_a_later_period_counts_in_that_period(finance, scenario):
    # o4 was paid on 03-03 and refunded 10.00 on 04-01
    march = get_report(
        finance, date_from="2026-03-03", date_to="2026-03-03", currency="USD", group_by="month"
    )
    april = get_report(
        finance, date_from="2026-04-01", date_to="2026-04-30", currency="USD", group_by="month"
    )

    # the sale's period is untouched by the later refund
    assert march["rows"] == [
        {
            "group": "2026-03",
            "name": "2026-03",
            "orders": 1,
            "gross_merchandise_value": "99.99",
            "platform_commission": "8.00",
            "creator_commission": "5.00",
            "fulfillment_fees": "3.00",
            "refunds": "0.00",
            "net_to_brands": "83.99",
        }
    ]
    # April has o5 (12.34, brand B: no creator, no fulfiller) and the refund of o4, whose shares
    # come off April's commissions (largest remainder: 0.80 / 0.50 / 0.30 / 8.40)
    assert april["rows"] == [
        {
            "group": "2026-04",
            "name": "2026-04",
            "orders": 1,
            "gross_merchandise_value": "12.34",
            "platform_commission": "0.19",
            "creator_commission": "-0.50",
            "fulfillment_fees": "-0.30",
            "refunds": "10.00",
            "net_to_brands": "2.95",
        }
    ]


def test_gmv_minus_refunds_equals_the_shares_in_every_row(finance, scenario):
    for group_by in GROUP_BY_CHOICES:
        report = get_report(
            finance, date_from="2026-01-01", date_to="2026-12-31", currency="USD", group_by=group_by
        )
        for row in [*report["rows"], report["totals"]]:

            def cents(name, row=row):
                return int(row[name].replace(".", ""))

            assert cents("gross_merchandise_value") - cents("refunds") == sum(
                cents(name)
                for name in (
                    "platform_commission",
                    "creator_commission",
                    "fulfillment_fees",
                    "net_to_brands",
                )
            ), (group_by, row)


def test_groups_by_party_with_names_and_a_null_group(finance, scenario):
    s = scenario
    by_creator = get_report(
        finance, date_from="2026-03-01", date_to="2026-03-31", currency="USD", group_by="creator"
    )
    by_fulfiller = get_report(
        finance,
        date_from="2026-03-01",
        date_to="2026-03-31",
        currency="USD",
        group_by="fulfillment_partner",
    )
    by_session = get_report(
        finance,
        date_from="2026-03-01",
        date_to="2026-03-31",
        currency="USD",
        group_by="live_session",
    )
    by_host = get_report(
        finance, date_from="2026-03-01", date_to="2026-03-31", currency="USD", group_by="host_app"
    )

    # the creator earned on o1 and o4; o2 had no creator: its own group, last
    assert [(r["group"], r["name"]) for r in by_creator["rows"]] == [
        (s["creator"].pk, "Creator A"),
        (None, None),
    ]
    creator_row, no_creator = by_creator["rows"]
    assert creator_row["creator_commission"] == "7.25"
    assert (no_creator["orders"], no_creator["gross_merchandise_value"]) == (1, "100.00")
    assert (no_creator["refunds"], no_creator["net_to_brands"]) == ("100.00", "0.00")
    assert [r["group"] for r in by_fulfiller["rows"]] == [s["fulfiller"].pk, None]
    assert by_fulfiller["rows"][0]["fulfillment_fees"] == "4.35"
    assert [(r["group"], r["name"]) for r in by_session["rows"]] == [
        (s["session"].pk, "Show A"),
        (None, None),
    ]
    assert {r["name"]: r["orders"] for r in by_host["rows"]} == {"Host A": 1, "Host B": 2}


def test_other_currencies_stay_out_and_have_their_own_report(finance, scenario):
    jpy = get_report(
        finance, date_from="2026-03-01", date_to="2026-03-31", currency="JPY", group_by="brand"
    )

    # o3: 5000 JPY at 8/5/3 %, no creator: JPY amounts have no decimals
    assert jpy["rows"] == [
        {
            "group": scenario["brand_a"].pk,
            "name": "Brand A",
            "orders": 1,
            "gross_merchandise_value": "5000",
            "platform_commission": "400",
            "creator_commission": "0",
            "fulfillment_fees": "150",
            "refunds": "0",
            "net_to_brands": "4450",
        }
    ]


def test_an_empty_period_has_no_rows_and_zero_totals(finance, scenario):
    report = get_report(
        finance, date_from="2025-01-01", date_to="2025-01-31", currency="USD", group_by="brand"
    )

    assert report["rows"] == []
    assert report["totals"] == {name: 0 if name == "orders" else "0.00" for name in FIGURES}


def test_group_by_defaults_to_day(finance, scenario):
    report = get_report(finance, date_from="2026-03-02", date_to="2026-03-02", currency="USD")

    assert report["group_by"] == "day"
    assert [row["group"] for row in report["rows"]] == ["2026-03-02"]


@pytest.mark.parametrize("group_by", ["brand", "day"])
def test_csv_parses_and_equals_the_json(finance, scenario, group_by):
    params = {
        "date_from": "2026-03-01",
        "date_to": "2026-04-30",
        "currency": "USD",
        "group_by": group_by,
    }
    report = get_report(finance, **params)

    response = finance.get(URL, {**params, "format": "csv"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["row", "group", "name", *FIGURES]
    groups = [r for r in rows if r["row"] == "group"]
    (totals,) = [r for r in rows if r["row"] == "total"]
    assert rows[-1] is totals
    assert len(groups) == len(report["rows"])
    for csv_row, json_row in zip(groups, report["rows"], strict=True):
        assert csv_row["group"] == (json_row["group"] or "")
        assert csv_row["name"] == (json_row["name"] or "")
        assert {name: csv_row[name] for name in FIGURES} == {
            name: str(json_row[name]) for name in FIGURES
        }
    assert {name: totals[name] for name in FIGURES} == {
        name: str(report["totals"][name]) for name in FIGURES
    }


def test_csv_by_accept_header_too(finance, scenario):
    response = finance.get(
        URL,
        {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD"},
        HTTP_ACCEPT="text/csv",
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")


def test_csv_of_an_empty_period_is_a_header_and_a_total(finance, db):
    response = finance.get(
        URL,
        {"date_from": "2026-01-01", "date_to": "2026-01-01", "currency": "KWD", "format": "csv"},
    )

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[1] == ["total", "", "", "0", "0.000", "0.000", "0.000", "0.000", "0.000", "0.000"]
    assert len(rows) == 2


def error(response) -> tuple[int, str, str | None]:
    body = response.json()
    assert body["type"] == "validation_error", body
    (item,) = body["errors"]
    return response.status_code, item["code"], item["attr"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"date_from": "2026-03-01", "date_to": "2026-03-31"}, (400, "required", "currency")),
        (
            {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "usd"},
            (400, "invalid_currency", "currency"),
        ),
        (
            {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "XYZ"},
            (400, "invalid_currency", "currency"),
        ),
        ({"date_to": "2026-03-31", "currency": "USD"}, (400, "required", "date_from")),
        (
            {"date_from": "2026-3-1", "date_to": "2026-03-31", "currency": "USD"},
            (400, "invalid", "date_from"),
        ),
        (
            {"date_from": "2026-03-01T00:00:00Z", "date_to": "2026-03-31", "currency": "USD"},
            (400, "invalid", "date_from"),
        ),
        (
            {"date_from": "2026-03-31", "date_to": "2026-03-01", "currency": "USD"},
            (400, "invalid_period", "date_to"),
        ),
        (
            {"date_from": "2026-03-01", "date_to": "9999-12-31", "currency": "USD"},
            (400, "invalid", "date_to"),
        ),
        (
            {
                "date_from": "2026-03-01",
                "date_to": "2026-03-31",
                "currency": "USD",
                "group_by": "x",
            },
            (400, "invalid_choice", "group_by"),
        ),
        (
            {
                "date_from": "2026-03-01",
                "date_to": "2026-03-31",
                "currency": "USD",
                "format": "xml",
            },
            (400, "invalid_choice", "format"),
        ),
    ],
)
def test_bad_queries_are_400_in_the_contract_format(finance, params, expected):
    assert error(finance.get(URL, params)) == expected


def test_errors_are_json_even_when_csv_was_asked_for(finance):
    response = finance.get(URL, {"date_from": "2026-03-01", "currency": "USD", "format": "csv"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["attr"] == "date_to"


@pytest.mark.parametrize("path", [URL, "/api/v1/reports/reconciliation"])
@pytest.mark.parametrize(
    "who", ["ops", "host_client", "fulfillment_client", "brand_client", "creator_client"]
)
def test_only_finance_reads_reports(request, path, who):
    client = request.getfixturevalue(who)

    response = client.get(
        path, {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD"}
    )

    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "permission_denied"


@pytest.mark.parametrize("path", [URL, "/api/v1/reports/reconciliation"])
def test_reports_need_a_key(api_client, db, path):
    response = api_client.get(
        path, {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD"}
    )

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_csv_needs_finance_too(brand_client):
    response = brand_client.get(
        URL,
        {"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD", "format": "csv"},
    )

    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"


def test_the_report_runs_a_fixed_number_of_queries(
    finance, plan, parties, django_assert_max_num_queries
):
    def queries_for_report() -> int:
        with CaptureQueriesContext(connection) as captured:
            get_report(
                finance,
                date_from="2026-05-01",
                date_to="2026-05-31",
                currency="USD",
                group_by="brand",
            )
        return len(captured)

    with at("2026-05-02T10:00:00"):
        pay(_order(parties, parties["brand_a"]))
    queries_for_report()  # the key's first use is recorded once: not part of the report
    few = queries_for_report()
    with at("2026-05-03T10:00:00"):
        for brand in (parties["brand_a"], parties["brand_b"]) * 5:
            order = pay(_order(parties, brand))
            refund(order, amount=100)

    # more orders, more groups: the same number of queries (one report, one name lookup)
    assert queries_for_report() == few
    with django_assert_max_num_queries(few):
        get_report(finance, date_from="2026-05-01", date_to="2026-05-31", currency="USD")


def _order(parties, brand):
    return make_order(
        brand=brand, host_app=parties["host_a"], creator=parties["creator"], items=[(10000, 1)]
    )


def test_report_for_a_single_day_includes_its_last_second(finance, plan, parties):
    # a sale at 23:59:59.999999 UTC belongs to that day; one at 00:00 the next day does not
    with at("2026-06-10T23:59:59.999999"):
        pay(_order(parties, parties["brand_a"]))
    with at("2026-06-11T00:00:00"):
        pay(_order(parties, parties["brand_a"]))

    day = get_report(finance, date_from="2026-06-10", date_to="2026-06-10", currency="USD")

    assert day["totals"]["orders"] == 1
    assert date.fromisoformat(day["rows"][0]["group"]) == date(2026, 6, 10)


def test_schema_documents_the_reports(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    report = schema["paths"]["/api/v1/reports/commissions"]["get"]
    params = {p["name"]: p for p in report["parameters"]}

    assert {"date_from", "date_to", "currency", "group_by", "format"} <= set(params)
    assert set(params["format"]["schema"]["enum"]) == {"json", "csv"}
    assert set(params["group_by"]["schema"]["enum"]) == set(GROUP_BY_CHOICES)
    assert set(report["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {"400", "401", "403"} <= set(report["responses"])
    assert "get" in schema["paths"]["/api/v1/reports/reconciliation"]


def test_the_ledger_keeps_merchandise_and_party_shares_on_their_own_sides(scenario):
    # The report tells sides apart by share alone (see commissions.reports.commission):
    # merchandise only ever on buyer funds clearing, the parties' shares never there.
    lines = LedgerLine.objects.filter(share__in=[Share.MERCHANDISE, *SHARE_FIGURES])

    assert lines.exists()
    assert not lines.filter(share=Share.MERCHANDISE).exclude(
        purpose=AccountPurpose.BUYER_FUNDS_CLEARING
    )
    assert not lines.exclude(share=Share.MERCHANDISE).filter(
        purpose=AccountPurpose.BUYER_FUNDS_CLEARING
    )


def test_the_report_is_one_statement_on_the_ledger(finance, scenario):
    with CaptureQueriesContext(connection) as captured:
        commission_report(
            date_from=date(2026, 3, 1), date_to=date(2026, 3, 31), currency="USD", group_by="brand"
        )

    ledger_queries = [q for q in captured if "commissions_ledgerline" in q["sql"]]
    assert len(ledger_queries) == 1
    assert len(captured) == 2  # and one for the brands' names
