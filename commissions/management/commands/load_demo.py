"""Load a small demo platform and print a key for each party (keys are shown only here)."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from commissions.api.report_views import chart_link_seconds, chart_link_token
from commissions.models import CommissionPlan
from orders.choices import LiveSessionStatus
from orders.models import LiveSession, Product
from partners.choices import BrandAccess, PartnerKind, StaffRole
from partners.models import APIKey, Enrollment, Partner
from partners.services import api_key_create

PRODUCTS = [
    ("GLOW-SERUM-30", "Glow vitamin C serum 30 ml", "skincare", 2999, 500),
    ("GLOW-LIP-RED", "Velvet lipstick, red", "makeup", 1850, 800),
    ("GLOW-MASK-5", "Hydrating sheet masks, 5 pack", "skincare", 1299, 1200),
]


class Command(BaseCommand):
    help = (
        "Create a demo platform: ops and finance keys, two host apps (one open, one invite-only), "
        "a fulfillment partner, a brand, a creator, products, a commission plan and a live "
        "session on air for the host app; prints the keys and a chart link for finance. Safe to "
        "run again: existing demo partners are reused and new keys are printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--env-file", help="Also write the keys to this file as KEY=value")
        parser.add_argument(
            "--base-url",
            default="http://localhost:8000",
            help="Where the service runs, for the chart link (default http://localhost:8000)",
        )

    @transaction.atomic
    def handle(self, *args, env_file: str | None = None, base_url: str = "", **options):
        fulfiller = _partner(PartnerKind.FULFILLMENT, "TalkShop Fulfillment")
        brand = _partner(PartnerKind.BRAND, "Glow Cosmetics", fulfillment_partner=fulfiller)
        host = _partner(PartnerKind.HOST_APP, "TokTok Live", brand_access=BrandAccess.OPEN)
        invite_host = _partner(
            PartnerKind.HOST_APP, "ShopStream", brand_access=BrandAccess.INVITE_ONLY
        )
        Enrollment.objects.get_or_create(host_app=invite_host, brand=brand)
        creator = _partner(PartnerKind.CREATOR, "Ava Creator")
        for sku, title, category, price, inventory in PRODUCTS:
            Product.objects.get_or_create(
                brand=brand,
                sku=sku,
                defaults={
                    "title": title,
                    "category": category,
                    "price": price,
                    "currency": "USD",
                    "inventory": inventory,
                },
            )
        CommissionPlan.objects.get_or_create(
            name="Demo standard plan",
            defaults={
                "platform_rate_bps": 800,
                "creator_rate_bps": 500,
                "fulfillment_rate_bps": 300,
                "fulfillment_fee_fixed": 50,
                "currency": "USD",
                "effective_from": timezone.now() - timedelta(days=1),
            },
        )
        # The host app's show is on air, so its first order can be placed during it.
        session = LiveSession.objects.filter(producer=host, title="Glow hour (demo)").first()
        if session is None:
            now = timezone.now()
            session = LiveSession.objects.create(
                producer=host,
                creator=creator,
                title="Glow hour (demo)",
                scheduled_start=now,
                status=LiveSessionStatus.LIVE,
                started_at=now,
            )
            session.host_apps.set([host])
            session.products.set(Product.objects.filter(brand=brand))
        keys = {
            "OPS_KEY": api_key_create(name="demo ops", role=StaffRole.OPS)[1],
            "FINANCE_KEY": api_key_create(name="demo finance", role=StaffRole.FINANCE)[1],
            "HOST_APP_KEY": api_key_create(name="demo", partner=host)[1],
            "INVITE_HOST_APP_KEY": api_key_create(name="demo", partner=invite_host)[1],
            "FULFILLMENT_KEY": api_key_create(name="demo", partner=fulfiller)[1],
            "BRAND_KEY": api_key_create(name="demo", partner=brand)[1],
            "CREATOR_KEY": api_key_create(name="demo", partner=creator)[1],
        }
        ids = {
            "HOST_APP_ID": host.id,
            "INVITE_HOST_APP_ID": invite_host.id,
            "FULFILLMENT_ID": fulfiller.id,
            "BRAND_ID": brand.id,
            "CREATOR_ID": creator.id,
            "LIVE_SESSION_ID": session.id,
            "PRODUCT_ID": Product.objects.get(brand=brand, sku=PRODUCTS[0][0]).id,
        }
        self.stdout.write(self.style.SUCCESS("Demo platform ready. Keys (shown once):"))
        for name, value in {**keys, **ids}.items():
            self.stdout.write(f"  {name:<20} {value}")
        if env_file:
            with open(env_file, "w") as handle:
                handle.writelines(f"{k}={v}\n" for k, v in {**keys, **ids}.items())
        # Finance opens the commission chart in a browser with this link, no admin login.
        finance_key = APIKey.objects.get_from_key(keys["FINANCE_KEY"])
        token = chart_link_token(api_key_id=finance_key.pk, params={"currency": "USD"})
        minutes = chart_link_seconds() // 60
        self.stdout.write(
            f"Finance's commission chart (link valid {minutes} min; "
            "POST /api/v1/reports/chart-links makes a new one):\n"
            f"  {base_url.rstrip('/')}/api/v1/reports/commissions/chart?token={token}"
        )


def _partner(kind: str, name: str, **fields) -> Partner:
    partner, _ = Partner.objects.get_or_create(kind=kind, name=name, defaults=fields)
    return partner
