"""Periodic order work, for Celery beat (``livecommerce.celery`` schedules it by name)."""

from celery import shared_task

from orders import services


@shared_task(name="orders.tasks.close_return_windows")
def close_return_windows() -> int:
    """Complete the delivered orders whose return window has closed. Safe to run twice."""
    return services.order_close_return_windows()
