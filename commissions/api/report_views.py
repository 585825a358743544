"""Finance reports: commissions (JSON or streamed CSV), reconciliation, and a chart for people.

The API views are for finance staff keys only: every other role and partner gets 403. The chart
page is for people in a browser, which cannot send a Bearer key: it opens with a short-lived
signed link that a finance key asks for (``POST /reports/chart-links``), or with the Django
admin login of a staff user allowed to view ledger lines (finance staff; superusers).
"""

from datetime import date, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers, serializers
from rest_framework import status as http_status
from rest_framework.response import Response
from rest_framework.views import APIView

from commissions.api.report_serializers import (
    CommissionReportQuerySerializer,
    CommissionReportSerializer,
    PeriodQuerySerializer,
    ReconciliationReportSerializer,
    report_context,
    report_csv_rows,
)
from commissions.reports import commission, reconciliation
from livecommerce import money
from livecommerce.api import validated_input
from livecommerce.csv_export import csv_lines, csv_response
from livecommerce.errors import error_response
from livecommerce.schema import ErrorSerializer
from partners.choices import StaffRole
from partners.models import APIKey
from partners.permissions import allow

FINANCE = allow(staff=(StaffRole.FINANCE,))


class CSVRenderer(renderers.BaseRenderer):
    """``?format=csv`` (or ``Accept: text/csv``). Reports stream their CSV themselves; this class
    is what lets DRF's content negotiation pick CSV, and renders any list of rows it is given."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return "".join(csv_lines(data or [])).encode()


class ReportAPIView(APIView):
    """JSON by default, CSV with ``?format=csv``; errors are always JSON in the contract format."""

    permission_classes = [FINANCE]
    renderer_classes = [renderers.JSONRenderer, CSVRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            # DRF answers an unknown ?format= with 404; it is bad input on this existing path.
            formats = " or ".join(renderer.format for renderer in self.get_renderers())
            detail = exceptions.ErrorDetail(f"Use {formats}.", code="invalid_choice")
            raise exceptions.ValidationError({"format": [detail]}) from None

    def handle_exception(self, exc):
        self.request.accepted_renderer = renderers.JSONRenderer()
        self.request.accepted_media_type = renderers.JSONRenderer.media_type
        return super().handle_exception(exc)

    def get_renderers(self):
        found = super().get_renderers()
        if getattr(self, "swagger_fake_view", False):
            # For the schema: errors are JSON only; the CSV body is declared on the 200 response.
            return [renderer for renderer in found if renderer.format != CSVRenderer.format]
        return found

    def wants_csv(self) -> bool:
        return getattr(self.request.accepted_renderer, "format", None) == CSVRenderer.format


def _query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _invalid_query_example(name: str, code: str, attr: str, detail: str) -> OpenApiExample:
    return OpenApiExample(
        name,
        value={
            "type": "validation_error",
            "errors": [{"code": code, "detail": detail, "attr": attr}],
        },
        response_only=True,
        status_codes=["400"],
    )


INVALID_QUERY = OpenApiResponse(
    ErrorSerializer,
    description=(
        "A query parameter is missing or invalid (`required`, `invalid` date, "
        "`invalid_currency`, `invalid_period` when date_to is before date_from, "
        "`invalid_choice` for group_by or format); `attr` names the parameter."
    ),
    examples=[
        _invalid_query_example(
            "invalid_currency",
            "invalid_currency",
            "currency",
            "unknown or non-ISO 4217 currency code 'usd'",
        ),
        _invalid_query_example(
            "invalid_period", "invalid_period", "date_to", "date_to is before date_from."
        ),
        _invalid_query_example("required", "required", "date_from", "This field is required."),
    ],
)

FORMAT_PARAMETER = OpenApiParameter(
    "format",
    OpenApiTypes.STR,
    enum=["json", "csv"],
    description="`csv` streams the same rows and totals as CSV (`text/csv`), header row first.",
)

# One brand's row, so its figures are the totals too.
_FIGURES_EXAMPLE = {
    "orders": 2,
    "gross_merchandise_value": "59.97",
    "platform_commission": "3.20",
    "creator_commission": "2.00",
    "fulfillment_fees": "1.20",
    "refunds": "19.99",
    "net_to_brands": "33.58",
}

REPORT_EXAMPLE = OpenApiExample(
    "By brand",
    response_only=True,
    status_codes=["200"],
    value={
        "group_by": "brand",
        "currency": "USD",
        "date_from": "2026-11-01",
        "date_to": "2026-11-30",
        "rows": [
            {
                "group": "prt_01jd3x6q2c7h9k4m8n2p5r7t9v",
                "name": "Glow Cosmetics",
                **_FIGURES_EXAMPLE,
            }
        ],
        "totals": _FIGURES_EXAMPLE,
    },
)

CSV_EXAMPLE = (
    "row,group,name,orders,gross_merchandise_value,platform_commission,creator_commission,"
    "fulfillment_fees,refunds,net_to_brands\r\n"
    "group,prt_01jd3x6q2c7h9k4m8n2p5r7t9v,Glow Cosmetics,2,59.97,3.20,2.00,1.20,19.99,33.58\r\n"
    "total,,,2,59.97,3.20,2.00,1.20,19.99,33.58\r\n"
)


class CommissionReportView(ReportAPIView):
    """What the platform earned, from whom, on which live sessions: finance's commission report."""

    @extend_schema(
        summary="Commission report for a period and currency, grouped (JSON or CSV)",
        description=(
            "Aggregated from the ledger lines created in the period (UTC days, both dates "
            "inclusive). `gross_merchandise_value`: merchandise paid in sale entries; `refunds`: "
            "merchandise refunded in refund entries; the commissions, fees and `net_to_brands` "
            "are net of the refunds posted in the period, so a refund counts in the period it "
            "happens. For every row and the totals, `gross_merchandise_value - refunds = "
            "platform_commission + creator_commission + fulfillment_fees + net_to_brands`; "
            "`totals` equals the ledger over the period. Finance staff only."
        ),
        tags=["reports"],
        parameters=[CommissionReportQuerySerializer, FORMAT_PARAMETER],
        responses={
            (200, "application/json"): CommissionReportSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The same rows, then a `total` row",
                examples=[
                    OpenApiExample(
                        "CSV", value=CSV_EXAMPLE, response_only=True, media_type="text/csv"
                    )
                ],
            ),
            400: INVALID_QUERY,
        },
        examples=[REPORT_EXAMPLE],
    )
    def get(self, request):
        query = _query(CommissionReportQuerySerializer, request)
        report = commission.commission_report(**query)
        if self.wants_csv():
            return csv_response(
                report_csv_rows(report),
                filename=(
                    f"commissions_{report.currency}_{report.date_from}_{report.date_to}"
                    f"_by_{report.group_by}.csv"
                ),
            )
        return Response(CommissionReportSerializer(report, context=report_context(report)).data)


class ReconciliationReportView(ReportAPIView):
    """Does the ledger agree with the orders (and settlements) over a period?"""

    renderer_classes = [renderers.JSONRenderer]

    @extend_schema(
        summary="Reconciliation: ledger vs orders vs settlements for a period",
        description=(
            "Every order paid, refunded or posted to in the period (UTC days, both inclusive) is "
            "compared over its whole life: what it says was paid and refunded against the buyer "
            "funds its ledger entries moved, and against its refund records; ledger lines must "
            "name their order's parties; entries must balance. Every settlement created, paid or "
            "failed in the period: its `net_payout` against its settlement entry, the ledger "
            "lines it covers and its payout entry. `consistent` is true when `differences` is "
            "empty. Amounts are minor-unit-exact decimal strings. Finance staff only."
        ),
        tags=["reports"],
        parameters=[PeriodQuerySerializer],
        responses={
            200: ReconciliationReportSerializer,
            400: INVALID_QUERY,
        },
        examples=[
            OpenApiExample(
                "One order's refund was not posted",
                response_only=True,
                status_codes=["200"],
                value={
                    "currency": "USD",
                    "date_from": "2026-11-22",
                    "date_to": "2026-11-22",
                    "consistent": False,
                    "orders_checked": 412,
                    "entries_checked": 431,
                    "settlements_checked": 3,
                    "truncated": False,
                    "differences": [
                        {
                            "check": "refund_posting",
                            "object": "ord_01jd3x6q2c7h9k4m8n2p5r7t9v",
                            "expected": "19.99",
                            "actual": "0.00",
                            "detail": "The order says 1999 was refunded; its refund entries "
                            "credited buyer funds 0.",
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request):
        query = _query(PeriodQuerySerializer, request)
        report = reconciliation.reconciliation_report(**query)
        return Response(
            ReconciliationReportSerializer(report, context={"currency": report.currency}).data
        )


# --- The chart page (Django admin login) -------------------------------------------------------

CHART_MAX_DAYS = 366
CHART_WIDTH, CHART_HEIGHT = 960, 330
PLOT_LEFT, PLOT_TOP, PLOT_WIDTH, PLOT_HEIGHT = 90, 20, 850, 280


def _chart_bars(report, *, days: list[date], currency: str) -> dict:
    """Geometry of the bar chart, in whole pixels, from integer amounts (no float)."""
    values = {row.group: row.figures.platform_commission for row in report.rows}
    highest = max([0, *values.values()])
    lowest = min([0, *values.values()])
    span = (highest - lowest) or 1
    zero_y = PLOT_TOP + PLOT_HEIGHT * highest // span
    slot = max(PLOT_WIDTH // max(len(days), 1), 1)
    width = max(slot * 7 // 10, 1)
    bars = []
    for index, day in enumerate(days):
        key = day.isoformat()
        if key not in values:
            continue
        value = values[key]
        height = PLOT_HEIGHT * abs(value) // span
        bars.append(
            {
                "day": key,
                "x": PLOT_LEFT + index * slot + (slot - width) // 2,
                "y": zero_y - height if value >= 0 else zero_y,
                "width": width,
                "height": height,
                "amount": money.to_decimal_string(value, currency),
            }
        )
    step = max(len(days) // 10, 1)
    ticks = [
        {"x": PLOT_LEFT + index * slot + slot // 2, "label": day.strftime("%m-%d")}
        for index, day in enumerate(days)
        if index % step == 0
    ]
    return {
        "bars": bars,
        "ticks": ticks,
        "zero_y": zero_y,
        "top_label": money.to_decimal_string(highest, currency),
        "bottom_label": money.to_decimal_string(lowest, currency),
        "show_bottom": lowest < 0,
        "plot_bottom": PLOT_TOP + PLOT_HEIGHT,
        "plot_right": PLOT_LEFT + PLOT_WIDTH,
    }


CHART_LINK_SALT = "commissions.report_chart"


def chart_link_seconds() -> int:
    return int(getattr(settings, "CHART_LINK_SECONDS", 900))


def chart_link_token(*, api_key_id: str, params: dict) -> str:
    """A signed token naming the finance key that asked and the period to open with."""
    return signing.dumps({"key": api_key_id, "params": params}, salt=CHART_LINK_SALT)


def chart_link_params(token: str) -> dict:
    """The period a chart link was made for; PermissionDenied if it is forged, expired, or its
    key was revoked (or is no longer a finance key) since."""
    try:
        payload = signing.loads(token, salt=CHART_LINK_SALT, max_age=chart_link_seconds())
    except signing.SignatureExpired:
        raise PermissionDenied("This chart link has expired: ask for a new one.") from None
    except signing.BadSignature:
        raise PermissionDenied("This chart link is not valid.") from None
    key = APIKey.objects.filter(pk=payload.get("key")).first()
    if key is None or key.revoked or key.role != StaffRole.FINANCE:
        raise PermissionDenied("The key this chart link was made with is no longer valid.")
    return payload.get("params") or {}


class ChartLinkInputSerializer(serializers.Serializer):
    date_from = serializers.DateField(required=False, help_text="Default: 29 days before date_to")
    date_to = serializers.DateField(required=False, help_text="Default: today")
    currency = serializers.CharField(required=False, max_length=3, help_text="Default: USD")


class ChartLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Opens the chart in a browser, no login, until expires")
    expires = serializers.DateTimeField()


class ChartLinkView(APIView):
    """A short-lived link to the commission chart page, for finance people in a browser."""

    permission_classes = [FINANCE]

    @extend_schema(
        summary="Get a short-lived link to the commission chart",
        description=(
            "The chart page (platform commission by day, SVG) is for a browser, which cannot "
            "send a Bearer key: this answers a signed link that opens it without any login "
            "for 15 minutes (the period given is where it opens; its form can change it). The "
            "link stops working at once if the key that asked for it is revoked."
        ),
        tags=["reports"],
        request=ChartLinkInputSerializer,
        responses={201: ChartLinkSerializer},
        examples=[
            OpenApiExample(
                "March",
                value={"date_from": "2026-03-01", "date_to": "2026-03-31", "currency": "USD"},
                request_only=True,
            ),
            OpenApiExample(
                "A link",
                value={
                    "url": "https://api.example.com/api/v1/reports/commissions/chart"
                    "?token=eyJrZXkiOiJrZXlfMDEifQ:1tQ2x9:3f9c",
                    "expires": "2026-11-23T12:15:00.000000Z",
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request):
        data = validated_input(ChartLinkInputSerializer, request.data)
        params = {name: str(value) for name, value in data.items()}
        token = chart_link_token(api_key_id=request.auth.pk, params=params)
        url = (
            request.build_absolute_uri(reverse("report-chart")) + "?" + urlencode({"token": token})
        )
        expires = timezone.now() + timedelta(seconds=chart_link_seconds())
        return Response(
            ChartLinkSerializer({"url": url, "expires": expires}).data,
            status=http_status.HTTP_201_CREATED,
        )


def commission_chart_view(request):
    """The period's platform commission by day, as a server-rendered SVG bar chart.

    For finance people in a browser: with a chart link's ``?token=`` (see ``ChartLinkView``),
    or the Django admin login of a staff user with the ``commissions.view_ledgerline``
    permission (or a superuser). No script, no CDN.
    """
    token = request.GET.get("token")
    if not token:
        return _chart_for_admin(request)
    try:
        defaults = chart_link_params(token)
    except PermissionDenied as exc:
        return error_response("chart_link_invalid", str(exc))
    return _chart(request, defaults=defaults, token=token)


@staff_member_required
def _chart_for_admin(request):
    if not request.user.has_perm("commissions.view_ledgerline"):
        raise PermissionDenied("Finance staff only.")
    return _chart(request, defaults={}, token=None)


def _chart(request, *, defaults: dict, token: str | None):
    today = timezone.now().date()
    date_to = request.GET.get("date_to") or defaults.get("date_to") or today.isoformat()
    params = {
        "date_to": date_to,
        "date_from": request.GET.get("date_from")
        or defaults.get("date_from")
        or _days_before(date_to, 29),
        "currency": request.GET.get("currency") or defaults.get("currency") or "USD",
    }
    serializer = PeriodQuerySerializer(data=params)
    context: dict = {"params": params, "errors": None, "report": None, "token": token}
    status = 200
    if not serializer.is_valid():
        context["errors"] = {
            name: [str(e) for e in errs] for name, errs in serializer.errors.items()
        }
        status = 400
    else:
        query = serializer.validated_data
        days_count = (query["date_to"] - query["date_from"]).days + 1
        if days_count > CHART_MAX_DAYS:
            context["errors"] = {"date_from": [f"At most {CHART_MAX_DAYS} days per chart."]}
            status = 400
        else:
            report = commission.commission_report(**query, group_by="day")
            days = [query["date_from"] + timedelta(days=n) for n in range(days_count)]
            formatted = CommissionReportSerializer(report, context=report_context(report)).data
            context.update(
                report=formatted,
                chart=_chart_bars(report, days=days, currency=report.currency),
                width=CHART_WIDTH,
                height=CHART_HEIGHT,
                plot_left=PLOT_LEFT,
                plot_top=PLOT_TOP,
            )
    return render(request, "commissions/report_chart.html", context, status=status)


def _days_before(day: str, days: int) -> str:
    try:
        return (date.fromisoformat(day) - timedelta(days=days)).isoformat()
    except ValueError:
        return day  # the form shows the error on date_to
    except OverflowError:
        return date.min.isoformat()  # date_to is within ``days`` of year 1: start there
