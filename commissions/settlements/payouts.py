"""Paying out a settlement: mark-paid (in payout -> paid out) and mark-failed (back to
available, settled again by the next run), each with its ledger entry and event."""

from django.db import transaction
from django.utils import timezone

from commissions.choices import AccountPurpose, EntryKind
from commissions.ledger.accounts import lock_available_account
from commissions.ledger.posting import Posting, ledger_post
from commissions.selectors import available_balance
from commissions.settlements.models import (
    Settlement,
)
from commissions.settlements.payloads import settlement_data
from commissions.settlements.status import settlement_move
from livecommerce import money
from livecommerce.errors import AppError
from partners.events import event_publish

P = AccountPurpose


def _locked_pending(settlement: Settlement, action: str) -> tuple[Settlement, str]:
    """The settlement locked, and the status ``action`` moves it to (the status table)."""
    settlement = Settlement.objects.select_for_update().get(pk=settlement.pk)
    move = settlement_move(action, status=settlement.status, posted=settlement.entry_id is not None)
    return settlement, move.target


@transaction.atomic
def settlement_mark_paid(*, settlement: Settlement, payout_reference: str) -> Settlement:
    """Record that the payout reached the payee: in payout -> paid out (kind ``payout``).

    Only a pending settlement (else 409 ``settlement_not_pending``), and only while its payee
    owes nothing in the currency (else 409 ``payee_owes``: a refund after the settlement was
    made took its available balance below zero; finance marks the settlement failed and the
    next run nets the debt off), so no payout leaves while its payee owes money. The payee's
    available account is locked, so an adjustment or another payout decides after this one.
    Publishes ``settlement.paid`` to the payee in the same transaction.
    """
    settlement, target = _locked_pending(settlement, "mark_paid")
    partner_id = settlement.partner_id
    lock_available_account(partner_id=partner_id, currency=settlement.currency)
    owed = -available_balance(partner_id=partner_id, currency=settlement.currency)
    if owed > 0:
        raise AppError(
            "payee_owes",
            f"The payee owes {money.to_decimal_string(owed, settlement.currency)} "
            f"{settlement.currency}: mark this settlement failed; the next run nets the debt off.",
        )
    return _pay_out(
        settlement,
        target=target,
        kind=EntryKind.PAYOUT,
        to=P.PARTNER_PAID_OUT,
        memo=f"Payout of {settlement.pk}: {payout_reference}",
        changes={"payout_reference": payout_reference, "paid_at": timezone.now()},
        event_type="settlement.paid",
    )


@transaction.atomic
def settlement_mark_failed(*, settlement: Settlement, reason: str) -> Settlement:
    """Record that the payout failed: the funds go back from in payout to available.

    The returned amount is a new line on the payee's available account (kind
    ``payout_failed``), so the next run settles it again with whatever else is due. Only a
    pending settlement (else 409 ``settlement_not_pending``); publishes ``settlement.failed``.
    """
    settlement, target = _locked_pending(settlement, "mark_failed")
    partner_id = settlement.partner_id
    # The credit lowers what the payee owes: under its account lock (settlement, then account,
    # as mark-paid), so a write-off never reads a debt this credit is paying off.
    lock_available_account(partner_id=partner_id, currency=settlement.currency)
    return _pay_out(
        settlement,
        target=target,
        kind=EntryKind.PAYOUT_FAILED,
        to=P.PARTNER_AVAILABLE,
        memo=f"Payout of {settlement.pk} failed: {reason}",
        changes={"failure_reason": reason, "failed_at": timezone.now()},
        event_type="settlement.failed",
    )


def _pay_out(
    settlement: Settlement,
    *,
    target: str,
    kind: str,
    to: str,
    memo: str,
    changes: dict,
    event_type: str,
) -> Settlement:
    """The move of a locked pending settlement: its payout entry (in payout -> ``to``, kind
    ``kind``, key ``<kind>:<id>``), its status and ``changes`` saved, and its event."""
    partner_id = settlement.partner_id
    settlement.payout_entry = ledger_post(
        kind=kind,
        currency=settlement.currency,
        postings=[
            Posting(P.PARTNER_IN_PAYOUT, debit=settlement.net_payout, partner_id=partner_id),
            Posting(to, credit=settlement.net_payout, partner_id=partner_id),
        ],
        idempotency_key=f"{kind}:{settlement.pk}",
        reference=settlement.pk,
        memo=memo[:500],
    )
    settlement.status = target
    for field, value in changes.items():
        setattr(settlement, field, value)
    settlement.save(update_fields=["payout_entry", "status", *changes, "updated"])
    _publish(settlement, event_type)
    return settlement


def _publish(settlement: Settlement, event_type: str) -> None:
    # The settlement row is locked by the caller, so the event's sequence number is ours.
    event_publish(
        type=event_type,
        object_id=settlement.pk,
        data=settlement_data(settlement),
        partner_ids=[settlement.partner_id],
    )
