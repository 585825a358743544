"""The platform's finance staff, as an API client: settle, pay out, report, and check the books.

Everything here is read over the API with a ``finance`` key; the checks are the ones a finance
team runs before it signs off a period: every ledger entry balances, the commission report
agrees with what the orders' breakdowns say, and each payee is paid exactly what it earned.
When money comes back (``money_back``): an order refunded after its payees were paid out
leaves them owing; finance sees it in the balances' ``owed``, writes a debt off with
``POST /adjustments``, and reads the payee's statement (JSON and CSV), whose closing must be the
balance as of its end.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TextIO

from clients.api import LiveCommerceClient

# The report's net shares, and the order breakdown's name for each.
SHARES = {
    "platform_commission": "platform_commission",
    "creator_commission": "creator_commission",
    "fulfillment_fees": "fulfillment_fees",
    "net_to_brands": "brand_net",
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Settled:
    """A settlement run and what it paid, with each payee's balance before and after."""

    run: dict
    settlements: list[dict] = field(default_factory=list)
    before: dict[str, Decimal] = field(default_factory=dict)  # available, per payee
    after: dict[str, dict] = field(default_factory=dict)  # the balance row, per payee
    reused: bool = False  # the period had run already: today's new money waits for the next


def money(value: str | None) -> Decimal:
    return Decimal(value or "0")


class Finance:
    def __init__(self, client: LiveCommerceClient) -> None:
        self.client = client

    def balance(self, partner_id: str, currency: str) -> dict:
        for row in self.client.balances(partner=partner_id):
            if row["currency"] == currency:
                return row
        return {
            "currency": currency,
            "pending": "0",
            "available": "0",
            "in_payout": "0",
            "paid_out": "0",
            "owed": "0",
        }

    def settle(
        self,
        *,
        period_end: date,
        currency: str,
        payees: Iterable[str],
        started_after: datetime | None = None,
        timeout: float = 60,
    ) -> Settled:
        """Run the settlement for the period, wait for it, and mark each payout paid."""
        payees = list(payees)
        before = {p: money(self.balance(p, currency)["available"]) for p in payees}
        run = self.client.settlements.run(period_end=period_end, currency=currency)
        created = datetime.fromisoformat(run["created"].replace("Z", "+00:00"))
        reused = started_after is not None and created < started_after
        waited = 0.0
        while run["status"] in ("queued", "running"):
            if waited > timeout:
                raise TimeoutError(f"settlement run {run['id']} still {run['status']}")
            threading.Event().wait(0.2)
            waited += 0.2
            run = self.client.settlements.get_run(run["id"])
        if run["status"] != "completed":
            raise RuntimeError(f"settlement run {run['id']} {run['status']}: {run.get('error')}")
        settlements = list(self.client.settlements.list(run=run["id"], page_size=200))
        for settlement in settlements:
            if settlement["status"] == "pending":
                self.client.settlements.mark_paid(
                    settlement["id"], payout_reference=f"wire-{settlement['id']}"
                )
        settled = Settled(run=run, before=before, reused=reused)
        settled.settlements = list(self.client.settlements.list(run=run["id"], page_size=200))
        settled.after = {p: self.balance(p, currency) for p in payees}
        return settled

    def adjust(self, *, partner: str, currency: str, amount: str, kind: str, reason: str) -> dict:
        """``POST /adjustments``: a ``write_off``, ``repayment`` or goodwill ``credit``."""
        return self.client.post(
            "/adjustments",
            {
                "partner": partner,
                "currency": currency,
                "amount": amount,
                "kind": kind,
                "reason": reason,
            },
        )

    def statement(self, *, partner: str, currency: str, date_from: date, date_to: date) -> dict:
        return self.client.get(
            "/statements",
            partner=partner,
            currency=currency,
            date_from=date_from.isoformat(),
            date_to=date_to.isoformat(),
        )

    def statement_csv(
        self, *, partner: str, currency: str, date_from: date, date_to: date
    ) -> list[list[str]]:
        text = self.client.get_text(
            "/statements",
            partner=partner,
            currency=currency,
            date_from=date_from.isoformat(),
            date_to=date_to.isoformat(),
            format="csv",
        )
        return list(csv.reader(io.StringIO(text)))

    def held_as_of(self, partner: str, currency: str, moment: datetime) -> Decimal:
        """``pending + available + in_payout`` from ``GET /balances?as_of=``."""
        rows = self.client.get(
            "/balances", partner=partner, as_of=moment.astimezone(UTC).isoformat()
        )
        row = next((r for r in rows if r["currency"] == currency), None)
        if row is None:
            return Decimal()
        return money(row["pending"]) + money(row["available"]) + money(row["in_payout"])

    def money_back(
        self,
        *,
        refund: Callable[[dict], object],
        order: dict,
        payee: str,
        others: Iterable[str] = (),
        since: date,
        say: Callable[[str], None],
    ) -> list[Check]:
        """An order refunded in full after its payees were paid out: ``payee`` (and the
        ``others`` paid on the order) owe their shares; finance writes each debt off and checks
        ``payee``'s statement against its balances."""
        currency = order["currency"]
        before = self.balance(payee, currency)
        refund(order)
        owing = self.balance(payee, currency)
        owed = money(owing["owed"])
        say(
            f"   {order['id']} refunded after payout: the payee's available went "
            f"{before['available']} -> {owing['available']}, owed {owing['owed']}"
        )
        checks = [
            Check(
                "a refund after payout leaves the payee owing its share",
                owed > 0 and money(owing["available"]) == -owed,
                f"owed {owing['owed']}",
            )
        ]
        # The platform absorbs it: every payee of the order that now owes is written off.
        cleared = []
        for partner in dict.fromkeys([payee, *others]):
            debt = self.balance(partner, currency)
            if money(debt["owed"]) <= 0:
                continue
            adjustment = self.adjust(
                partner=partner,
                currency=currency,
                amount=debt["owed"],
                kind="write_off",
                reason=f"Return of {order['id']} after payout; not recoverable",
            )
            after = self.balance(partner, currency)
            say(f"   wrote off {adjustment['amount']} ({adjustment['id']}): owed {after['owed']}")
            cleared.append(money(after["owed"]) == 0 and money(after["available"]) == 0)
        checks.append(
            Check(
                "a write-off clears the debt",
                bool(cleared) and all(cleared),
                f"{len(cleared)} payee(s) written off",
            )
        )
        today = datetime.now(UTC).date()
        statement = self.statement(partner=payee, currency=currency, date_from=since, date_to=today)
        lines = statement["lines"]
        summed = money(statement["opening"]) + sum((money(x["amount"]) for x in lines), Decimal())
        end = datetime.combine(today, time.max, tzinfo=UTC)
        start = datetime.combine(since, time.min, tzinfo=UTC) - timedelta(microseconds=1)
        say(
            f"   statement {since} .. {today}: opening {statement['opening']}, "
            f"{len(lines)} line(s), closing {statement['closing']}"
        )
        for line in lines[-4:]:
            say(
                f"     {line['kind']:<11}{line['amount']:>10}{line['balance']:>10}  "
                f"{line['description'][:50]}"
            )
        rows = self.statement_csv(partner=payee, currency=currency, date_from=since, date_to=today)
        checks += [
            Check(
                "statement: opening + lines = closing",
                summed == money(statement["closing"]),
                f"{summed} = {statement['closing']}",
            ),
            Check(
                "statement: opening and closing = balances as of their moments",
                money(statement["opening"]) == self.held_as_of(payee, currency, start)
                and money(statement["closing"]) == self.held_as_of(payee, currency, end),
                f"closing {statement['closing']}",
            ),
            Check(
                "statement shows the refund and the write-off",
                {"refund", "adjustment"} <= {x["kind"] for x in lines} or owed == 0,
                ", ".join(sorted({x["kind"] for x in lines})),
            ),
            Check(
                "statement CSV says the same",
                len(rows) == len(lines) + 3 and rows[-1][7] == statement["closing"],
                f"{len(rows)} rows",
            ),
        ]
        return checks

    def commission_report(
        self, *, date_from: date, date_to: date, currency: str, group_by: str
    ) -> dict:
        return self.client.reports.commissions(
            date_from=date_from, date_to=date_to, currency=currency, group_by=group_by
        )

    def ledger_check(self) -> Check:
        """Every ledger entry balances: per entry, debits equal credits."""
        entries = 0
        unbalanced = []
        for entry in self.client.ledger.entries(page_size=200):
            entries += 1
            debits = sum((money(line["debit"]) for line in entry["lines"]), Decimal())
            credits = sum((money(line["credit"]) for line in entry["lines"]), Decimal())
            if debits != credits:
                unbalanced.append(entry["id"])
        return Check(
            "every ledger entry balances",
            not unbalanced,
            f"{entries} entries" + (f", unbalanced: {unbalanced[:5]}" if unbalanced else ""),
        )


def report_check(row: dict | None, breakdowns: list[dict], label: str) -> list[Check]:
    """The report's row equals the sum of the orders' own breakdowns, share by share."""
    if row is None:
        return [Check(f"{label} appears in the commission report", not breakdowns)]
    summed: dict[str, Decimal] = defaultdict(Decimal)
    for totals in breakdowns:
        for figure, share in SHARES.items():
            summed[figure] += money(totals[share])
    checks = [
        Check(
            f"report {figure} = orders' breakdowns",
            money(row[figure]) == summed[figure],
            f"report {row[figure]}, breakdowns {summed[figure]}",
        )
        for figure in SHARES
    ]
    parts = sum((money(row[figure]) for figure in SHARES), Decimal())
    gmv_net = money(row["gross_merchandise_value"]) - money(row["refunds"])
    checks.append(
        Check("report shares add up to GMV - refunds", parts == gmv_net, f"{parts} = {gmv_net}")
    )
    return checks


def settlement_checks(settled: Settled, names: dict[str, str]) -> list[Check]:
    """Each payee was paid exactly what was available to it when the run started."""
    by_partner = {s["partner"]: s for s in settled.settlements}
    checks = []
    for partner, earned in settled.before.items():
        settlement = by_partner.get(partner)
        paid = money(settlement["net_payout"]) if settlement else Decimal()
        checks.append(
            Check(
                f"{names.get(partner, partner)} settled what it earned",
                paid == earned and money(settled.after[partner]["available"]) == 0,
                f"earned {earned}, settled {paid}, paid out {settled.after[partner]['paid_out']}",
            )
        )
    return checks


def print_table(out: TextIO, headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    out.write(line + "\n" + "-" * len(line) + "\n")
    for row in rows:
        out.write(
            "  ".join(
                str(x).ljust(w) if i == 0 else str(x).rjust(w)
                for i, (x, w) in enumerate(zip(row, widths, strict=True))
            )
            + "\n"
        )
