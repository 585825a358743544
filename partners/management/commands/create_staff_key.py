from django.core.management.base import BaseCommand

from partners.choices import StaffRole
from partners.services import api_key_create


class Command(BaseCommand):
    help = "Create a staff API key and print it on stdout (one line, the key alone)."

    def add_arguments(self, parser):
        parser.add_argument("--role", required=True, choices=list(StaffRole.values))
        parser.add_argument("--name", required=True, help="Who the key is for")

    def handle(self, *args, role: str, name: str, **options):
        _, raw_key = api_key_create(name=name, role=role)
        self.stdout.write(raw_key)
