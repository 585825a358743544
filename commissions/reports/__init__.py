"""Reports: what the ledger says, for finance and the partners, and whether it agrees with the rest.

Modules: ``commission`` (the commission report: its SQL, one ``GROUP BY`` over the ledger's
lines, and its figures), ``reconciliation`` (the report of differences and the daily run that
publishes each new finding), ``order_checks`` and ``settlement_checks`` (reconciliation's checks,
one SQL query each), ``differences`` (what a check finds). A period is UTC days, both dates
inclusive (``commissions.days``). This package's ``__init__`` imports nothing.
"""
