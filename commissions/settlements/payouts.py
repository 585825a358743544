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
    settlement.payout_entry = ledger_post(
        kind=EntryKind.PAYOUT,
        currency=settlement.currency,
        postings=[
            Posting(P.PARTNER_IN_PAYOUT, debit=settlement.net_payout, partner_id=partner_id),
            Posting(P.PARTNER_PAID_OUT, credit=settlement.net_payout, partner_id=partner_id),
        ],
        idempotency_key=f"payout:{settlement.pk}",
        reference=settlement.pk,
        memo=f"Payout of {settlement.pk}: {payout_reference}"[:500],
    )
    settlement.status = target
    settlement.payout_reference = payout_reference
    settlement.paid_at = timezone.now()
    settlement.save(
        update_fields=["payout_entry", "status", "payout_reference", "paid_at", "updated"]
    )
    _publish(settlement, "settlement.paid")
    return settlement


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
    settlement.payout_entry = ledger_post(
        kind=EntryKind.PAYOUT_FAILED,
        currency=settlement.currency,
        postings=[
            Posting(P.PARTNER_IN_PAYOUT, debit=settlement.net_payout, partner_id=partner_id),
            Posting(P.PARTNER_AVAILABLE, credit=settlement.net_payout, partner_id=partner_id),
        ],
        idempotency_key=f"payout_failed:{settlement.pk}",
        reference=settlement.pk,
        memo=f"Payout of {settlement.pk} failed: {reason}"[:500],
    )
    settlement.status = target
    settlement.failure_reason = reason
    settlement.failed_at = timezone.now()
    settlement.save(
        update_fields=["payout_entry", "status", "failure_reason", "failed_at", "updated"]
    )
    _publish(settlement, "settlement.failed")
    return settlement


def _publish(settlement: Settlement, event_type: str) -> None:
    # The settlement row is locked by the caller, so the event's sequence number is ours.
    event_publish(
        type=event_type,
        object_id=settlement.pk,
        data=settlement_data(settlement),
        partner_ids=[settlement.partner_id],
    )
