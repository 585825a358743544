"""Logs operations people can read: JSON lines, each with the request id it belongs to.

A request gets an id (the caller's ``X-Request-Id`` when it is a sane token, else a new one),
returned as ``X-Request-Id``. While the request runs, every log record carries it as
``request_id``, and so does every Celery task the request queues (the id rides in the task
message's headers and is set again in the worker around the task).
"""

import contextvars
import logging
import re
import time
import uuid

from celery import signals

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HEADER = "X-Request-Id"
access_log = logging.getLogger("livecommerce.request")


def _install_record_factory() -> None:
    """Every log record, from any library, carries ``request_id`` (``None`` outside one)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_adds_request_id", False):
        return

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        return record

    factory._adds_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


_install_record_factory()


class RequestIdMiddleware:
    """Outermost: names the request, logs it once when answered, returns ``X-Request-Id``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[HEADER] = request_id
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return response
        finally:
            request_id_var.reset(token)


# --- Celery: the request id travels with the tasks a request queues ---------------------------


@signals.before_task_publish.connect
def _request_id_into_task(headers=None, **kwargs) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault("request_id", request_id)


_task_tokens: dict[str, contextvars.Token] = {}


@signals.task_prerun.connect
def _request_id_from_task(task_id=None, task=None, **kwargs) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, "request_id", None) or (
        (getattr(request, "headers", None) or {}).get("request_id")
    )
    if request_id and task_id:
        _task_tokens[task_id] = request_id_var.set(request_id)


@signals.task_postrun.connect
def _request_id_done(task_id=None, **kwargs) -> None:
    token = _task_tokens.pop(task_id, None) if task_id else None
    if token is not None:
        request_id_var.reset(token)
