"""Periodic order work, for Celery beat (``livecommerce.celery`` schedules it by name)."""

from celery import shared_task

from orders import services


@shared_task(name="orders.tasks.close_return_windows")
def close_return_windows() -> int:
    """Complete the delivered orders whose return window has closed. Safe to run twice."""
    return services.order_close_return_windows()


@shared_task(name="orders.tasks.expire_orders")
def expire_orders() -> int:
    """Expire the unpaid orders whose hold has ended and put their units back on sale.

    Beat sends it every ``ORDER_EXPIRY_INTERVAL`` seconds; safe to run twice, and on two workers
    at once (each takes the orders the other has not locked).
    """
    return services.order_expire_due()
