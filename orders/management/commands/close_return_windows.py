"""``python manage.py close_return_windows``: what the periodic task does, run at once."""

from django.core.management.base import BaseCommand

from orders import services


class Command(BaseCommand):
    help = "Complete each delivered order whose return window (RETURN_WINDOW_DAYS) has closed."

    def handle(self, *args, **options):
        completed = services.order_close_return_windows()
        self.stdout.write(f"Completed {completed} order(s).")
