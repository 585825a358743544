"""A settlement as the API and its webhooks show it: one builder for both
(``SettlementSerializer`` answers with it; ``settlement.*`` events carry it)."""

from typing import Any

from commissions.settlements.models import Settlement
from livecommerce import money
from livecommerce.wire import timestamp


def settlement_data(settlement: Settlement) -> dict[str, Any]:
    """A settlement as the API and its webhooks show it (amounts as decimal strings)."""
    currency = settlement.currency

    def amount(minor: int) -> str:
        return money.to_decimal_string(minor, currency)

    return {
        "id": settlement.pk,
        "run": settlement.run_id,
        "partner": settlement.partner_id,
        "currency": currency,
        "period_end": settlement.period_end.isoformat(),
        "status": settlement.status,
        "gross": amount(settlement.gross),
        "platform_commission": amount(settlement.platform_commission),
        "creator_commission": amount(settlement.creator_commission),
        "fulfillment_fees": amount(settlement.fulfillment_fees),
        "refunds": amount(settlement.refunds),
        "adjustments": amount(settlement.adjustments),
        "net_payout": amount(settlement.net_payout),
        "line_count": settlement.line_count,
        "ledger_entry": settlement.entry_id,
        "payout_entry": settlement.payout_entry_id,
        "payout_reference": settlement.payout_reference or None,
        "failure_reason": settlement.failure_reason or None,
        "created": timestamp(settlement.created),
        "paid_at": timestamp(settlement.paid_at),
        "failed_at": timestamp(settlement.failed_at),
    }
