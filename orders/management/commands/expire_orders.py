"""``python manage.py expire_orders``: what the periodic task does, run at once."""

from django.core.management.base import BaseCommand

from orders import services


class Command(BaseCommand):
    help = "Expire each unpaid order whose hold (expires_at) has ended; its units go back on sale."

    def handle(self, *args, **options):
        expired = services.order_expire_due()
        self.stdout.write(f"Expired {expired} order(s).")
