"""The double-entry ledger: one posting function, and the postings of an order's life.

Every movement of money is a ``LedgerEntry`` whose lines balance (debits == credits, in the
entry's one currency). ``ledger_post`` is the only writer: it refuses an unbalanced entry, and
PostgreSQL refuses one too (a deferred constraint trigger checks each entry at commit, other
triggers refuse UPDATE and DELETE). Each posting carries an idempotency key, so a retried task or
a repeated call returns the entry already posted instead of posting twice.

Amounts are integers in minor units; splits and reversals go through ``livecommerce.money``,
whose parts always add up exactly. See docs/ledger.md for the chart of accounts and a worked
order.

Modules: ``posting`` (``ledger_post_many`` and ``ledger_post``, the balance checks, the
idempotency keys), ``accounts`` (accounts created on first use; the payees' available accounts
locked in one global order), ``orders`` (the sale and the release of an order), ``refunds`` (a
refund's reversals). Adjustments post from ``commissions.debts``, settlements and payouts from
``commissions.settlements``. This package's ``__init__`` imports nothing.
"""
