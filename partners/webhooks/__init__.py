"""Signed webhooks (Standard Webhooks): endpoints, the delivery outbox, sending and the sweeper.

Modules: ``choices`` (statuses and event names), ``conf`` (delivery settings), ``url_policy``
(which URLs may be called), ``signing`` (secrets and signatures), ``sending`` (one HTTP POST),
``services`` (writes), ``selectors`` (reads), ``filters``. This package imports nothing at
import time so that ``partners.models`` may import its choices.
"""
