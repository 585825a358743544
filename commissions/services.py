"""Commission plans and ledger postings: the writes of the commissions app.

The order services call these inside their own transaction, with the order row locked:
- ``commission_plan_apply(order=...)`` at payment: pick the most specific plan in force (per
  line), copy its rates onto each line, or raise ``AppError("no_commission_plan")`` (422).
- ``ledger_post_sale(order=...)`` after payment; ``ledger_post_refund(refund=...)`` for each
  refund (a paid order's cancel is a full refund); ``ledger_post_release(order=...)`` when the
  return window closes.
Each is idempotent: called again for the same order or refund it returns what was posted.

Settlements post through ``ledger_post`` with ``Posting`` lines (see
``commissions.ledger.posting``).
"""

from commissions.ledger.orders import ledger_post_release, ledger_post_sale
from commissions.ledger.posting import Posting, UnbalancedEntry, ledger_post
from commissions.ledger.refunds import ledger_post_refund
from commissions.plans import (
    commission_plan_apply,
    commission_plan_create,
    commission_plan_update,
    commission_terms,
    commission_terms_apply,
)

__all__ = [
    "Posting",
    "UnbalancedEntry",
    "commission_plan_apply",
    "commission_plan_create",
    "commission_plan_update",
    "commission_terms",
    "commission_terms_apply",
    "ledger_post",
    "ledger_post_refund",
    "ledger_post_release",
    "ledger_post_sale",
]
