"""Commission plans and ledger postings.

The order services call these inside their own transaction, with the order row locked:
- ``commission_plan_apply(order=...)`` at payment: pick the most specific plan in force, copy its
  rates onto each line, or raise ``AppError("no_commission_plan")`` (422).
- ``ledger_post_sale(order=...)`` after payment; ``ledger_post_refund(refund=...)`` for each
  refund (a paid order's cancel is a full refund); ``ledger_post_release(order=...)`` when the
  return window closes.

PLACEHOLDERS until the ledger lands (issue 4): they do nothing yet.
"""


def commission_plan_apply(*, order) -> None:
    return None


def ledger_post_sale(*, order) -> None:
    return None


def ledger_post_refund(*, refund) -> None:
    return None


def ledger_post_release(*, order) -> None:
    return None
