"""The resources of selling and money: orders, the ledger, settlements, reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from clients.api.encoding import _body, _when, format_amount
from clients.api.resources import _Resource
from clients.api.shapes import JSON, Amount, LedgerEntry, Order


class Orders(_Resource):
    """Orders and the actions that move them through their statuses."""

    path = "/orders"

    def create(
        self,
        *,
        lines: list[dict[str, Any]],
        live_session: str | None = None,
        buyer: dict[str, str] | None = None,
        shipping_address: dict[str, Any] | None = None,
        shipping_amount: Amount | None = None,
        tax_amount: Amount | None = None,
        idempotency_key: str | None = None,
    ) -> Order:
        """``POST /orders`` (host app): ``lines=[{"product": id, "quantity": n}]``.

        Prices come from the catalog; ``409 insufficient_inventory`` when it would oversell.
        """
        body = _body(
            lines=lines,
            live_session=live_session,
            buyer=buyer,
            shipping_address=shipping_address,
            shipping_amount=None if shipping_amount is None else format_amount(shipping_amount),
            tax_amount=None if tax_amount is None else format_amount(tax_amount),
        )
        return self._client.post(self.path, body, idempotency_key=idempotency_key)

    def list(self, **filters: Any) -> Iterator[Order]:
        return self._client.iterate(self.path, **filters)

    def get(self, order_id: str) -> Order:
        return self._client.get(self._at(order_id))

    def pay(self, order_id: str, *, amount: Amount, payment_reference: str) -> Order:
        body = {"amount": format_amount(amount), "payment_reference": payment_reference}
        return self._client.post(self._at(order_id, "pay"), body)

    def cancel(self, order_id: str, *, reason: str | None = None) -> Order:
        return self._client.post(self._at(order_id, "cancel"), _body(reason=reason))

    def accept(self, order_id: str) -> Order:
        return self._client.post(self._at(order_id, "accept"))

    def ship(self, order_id: str, *, carrier: str, tracking_number: str) -> Order:
        body = {"carrier": carrier, "tracking_number": tracking_number}
        return self._client.post(self._at(order_id, "ship"), body)

    def deliver(self, order_id: str) -> Order:
        return self._client.post(self._at(order_id, "deliver"))

    def refund(
        self,
        order_id: str,
        *,
        lines: list[dict[str, Any]] | None = None,
        amount: Amount | None = None,
        reason: str | None = None,
        restock: bool | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """``POST /orders/{id}/refunds``: ``lines=[{"line", "quantity"}]`` or an ``amount``."""
        body = _body(
            lines=lines,
            amount=None if amount is None else format_amount(amount),
            reason=reason,
            restock=restock,
        )
        return self._client.post(
            self._at(order_id, "refunds"), body, idempotency_key=idempotency_key
        )

    def refunds(self, order_id: str) -> list[JSON]:
        """The order's refunds so far."""
        return list(self._client.iterate(self._at(order_id, "refunds")))

    def events(self, order_id: str) -> list[JSON]:
        """The order's history, oldest first as the service lists it."""
        return list(self._client.iterate(self._at(order_id, "events")))

    def breakdown(self, order_id: str) -> JSON:
        """Where the order's money went: per line shares, ``totals`` net of refunds."""
        return self._client.get(self._at(order_id, "breakdown"))


class Ledger(_Resource):
    path = "/ledger/entries"

    def entries(self, **filters: Any) -> Iterator[LedgerEntry]:
        """``GET /ledger/entries`` (finance: everything; a partner: its own accounts)."""
        return self._client.iterate(self.path, **filters)


class Settlements(_Resource):
    """Settlement runs and payouts (``finance``; a payee reads its own)."""

    path = "/settlements"

    def run(self, *, period_end: date | str, currency: str) -> JSON:
        """Start a run (``202``); a period that already ran returns the same run."""
        body = {"period_end": _when(period_end), "currency": currency}
        return self._client.post(self._at("run"), body)

    def list(self, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self.path, **filters)

    def get(self, settlement_id: str) -> JSON:
        return self._client.get(self._at(settlement_id))

    def lines(self, settlement_id: str, **filters: Any) -> Iterator[JSON]:
        return self._client.iterate(self._at(settlement_id, "lines"), **filters)

    def lines_csv(self, settlement_id: str) -> str:
        return self._client.get_text(self._at(settlement_id, "lines"), format="csv")

    def mark_paid(self, settlement_id: str, *, payout_reference: str) -> JSON:
        body = {"payout_reference": payout_reference}
        return self._client.post(self._at(settlement_id, "mark-paid"), body)

    def mark_failed(self, settlement_id: str, *, reason: str) -> JSON:
        """The payout bounced: the settlement's funds return to ``available``."""
        return self._client.post(self._at(settlement_id, "mark-failed"), {"reason": reason})

    def runs(self, **filters: Any) -> Iterator[JSON]:
        """``GET /settlement-runs``: the runs, to follow one started in the background."""
        return self._client.iterate("/settlement-runs", **filters)

    def get_run(self, run_id: str) -> JSON:
        return self._client.get(f"/settlement-runs/{run_id}")


class Reports(_Resource):
    path = "/reports/commissions"

    def commissions(
        self,
        *,
        date_from: date | str,
        date_to: date | str,
        currency: str,
        group_by: str,
    ) -> JSON:
        """``{"group_by", "currency", "date_from", "date_to", "rows", "totals"}``."""
        return self._client.get(
            self.path, date_from=date_from, date_to=date_to, currency=currency, group_by=group_by
        )

    def reconciliation(
        self, *, date_from: date | str, date_to: date | str, currency: str | None = None
    ) -> JSON:
        """``GET /reports/reconciliation``: the ledger against the orders over a period."""
        return self._client.get(
            "/reports/reconciliation", date_from=date_from, date_to=date_to, currency=currency
        )

    def commissions_csv(
        self, *, date_from: date | str, date_to: date | str, currency: str, group_by: str
    ) -> str:
        return self._client.get_text(
            self.path,
            date_from=date_from,
            date_to=date_to,
            currency=currency,
            group_by=group_by,
            format="csv",
        )
