from django.core.management.base import BaseCommand

from partners.webhooks.services import webhook_deliveries_sweep


class Command(BaseCommand):
    help = (
        "Queue every webhook delivery that is due and that no task has taken (what beat runs "
        "every 30 s), and print how many were queued."
    )

    def handle(self, *args, **options):
        self.stdout.write(str(webhook_deliveries_sweep()))
