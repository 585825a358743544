from django.db import models


class AccountPurpose(models.TextChoices):
    """What a ledger account holds. Every account but ``buyer_funds_clearing`` is credit-normal.

    ``buyer_funds_clearing`` is the platform's asset: buyer money it holds (debit-normal).
    Platform revenue and tax payable are the platform's; the ``partner_*`` accounts belong to one
    partner each and are what the platform owes it (pending -> available -> in_payout), and
    ``partner_paid_out`` accumulates what has left the platform to that partner.
    """

    BUYER_FUNDS_CLEARING = "buyer_funds_clearing", "Buyer funds clearing"
    PLATFORM_REVENUE = "platform_revenue", "Platform commission revenue"
    TAX_PAYABLE = "tax_payable", "Tax payable"
    PARTNER_PENDING = "partner_pending", "Partner payable, pending (return window open)"
    PARTNER_AVAILABLE = "partner_available", "Partner payable, available to settle"
    PARTNER_IN_PAYOUT = "partner_in_payout", "Partner payable, in a settlement being paid"
    PARTNER_PAID_OUT = "partner_paid_out", "Paid out to the partner"
    # The platform's side of an adjustment (debit-normal): what it put into payees' balances.
    PLATFORM_WRITE_OFFS = "platform_write_offs", "Debts the platform absorbed (write-offs)"
    PLATFORM_CREDITS = "platform_credits", "Goodwill credits the platform gave payees"
    REPAYMENTS_RECEIVED = "repayments_received", "Debts payees paid back outside the service"


PARTNER_PURPOSES = (
    AccountPurpose.PARTNER_PENDING,
    AccountPurpose.PARTNER_AVAILABLE,
    AccountPurpose.PARTNER_IN_PAYOUT,
    AccountPurpose.PARTNER_PAID_OUT,
)
PLATFORM_PURPOSES = (
    AccountPurpose.BUYER_FUNDS_CLEARING,
    AccountPurpose.PLATFORM_REVENUE,
    AccountPurpose.TAX_PAYABLE,
    AccountPurpose.PLATFORM_WRITE_OFFS,
    AccountPurpose.PLATFORM_CREDITS,
    AccountPurpose.REPAYMENTS_RECEIVED,
)

# What the platform holds for a payee: a statement follows their sum (negative while it owes).
HELD_PURPOSES = (
    AccountPurpose.PARTNER_PENDING,
    AccountPurpose.PARTNER_AVAILABLE,
    AccountPurpose.PARTNER_IN_PAYOUT,
)


class EntryKind(models.TextChoices):
    SALE = "sale", "Sale"
    REFUND = "refund", "Refund"
    RELEASE = "release", "Release (return window closed)"
    SETTLEMENT = "settlement", "Settlement"
    PAYOUT = "payout", "Payout"
    PAYOUT_FAILED = "payout_failed", "Payout failed"
    REVERSAL = "reversal", "Reversal"
    ADJUSTMENT = "adjustment", "Adjustment"


class Share(models.TextChoices):
    """Which part of a purchase a ledger line is about (blank for settlements and payouts).

    Lines on ``buyer_funds_clearing`` use ``merchandise`` (per order line), ``shipping`` or
    ``tax``; the credit side uses the party's share.
    """

    MERCHANDISE = "merchandise", "Merchandise (what the buyer paid for a line)"
    PLATFORM_COMMISSION = "platform_commission", "Platform commission"
    CREATOR_COMMISSION = "creator_commission", "Creator commission"
    FULFILLMENT_FEE = "fulfillment_fee", "Fulfillment fee"
    BRAND_NET = "brand_net", "Brand net"
    SHIPPING = "shipping", "Shipping"
    TAX = "tax", "Tax"


class AdjustmentKind(models.TextChoices):
    """Finance's corrections of a payee's balance; each credits the payee's available balance.

    ``write_off``: the platform absorbs a debt (at most what is owed); ``repayment``: the payee
    paid a debt back outside the service (at most what is owed); ``credit``: a goodwill credit.
    """

    WRITE_OFF = "write_off", "Write-off (the platform absorbs a debt)"
    REPAYMENT = "repayment", "Repayment (paid back outside the service)"
    CREDIT = "credit", "Goodwill credit"


# The platform account each kind of adjustment debits.
ADJUSTMENT_ACCOUNTS = {
    AdjustmentKind.WRITE_OFF: AccountPurpose.PLATFORM_WRITE_OFFS,
    AdjustmentKind.REPAYMENT: AccountPurpose.REPAYMENTS_RECEIVED,
    AdjustmentKind.CREDIT: AccountPurpose.PLATFORM_CREDITS,
}
