"""Signed webhooks (Standard Webhooks): endpoints, the delivery outbox, sending and the sweeper.

Modules: ``models`` (endpoints, deliveries, attempts; registered by ``partners.models`` under
the app label ``partners``), ``choices`` (statuses and event names), ``conf`` (delivery
settings), ``url_policy`` (which URLs may be called), ``signing`` (secrets and signatures),
``sending`` (one HTTP POST, over a kept connection), ``services`` (writes: ``endpoints``,
``deliveries``), ``queueing`` (handing deliveries to the send task), ``selectors`` (reads),
``filters``, ``tasks`` (the send task and the sweeper), ``api`` (serializers and views),
``examples`` (an example of each event type).
This package's ``__init__`` imports nothing, so that ``partners.models`` may import from it.
"""
