"""factory_boy factories for every model the tests build."""

from datetime import timedelta

import factory
from django.utils import timezone

from commissions.models import CommissionPlan
from orders.models import LiveSession, Product
from partners.choices import BrandAccess, PartnerKind
from partners.models import Enrollment, Partner


class PartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Partner

    kind = PartnerKind.BRAND
    name = factory.Sequence(lambda n: f"Partner {n}")
    email = factory.LazyAttribute(lambda o: f"{o.name.lower().replace(' ', '.')}@example.com")


class HostAppFactory(PartnerFactory):
    kind = PartnerKind.HOST_APP
    name = factory.Sequence(lambda n: f"Host app {n}")
    brand_access = BrandAccess.OPEN


class FulfillmentFactory(PartnerFactory):
    kind = PartnerKind.FULFILLMENT
    name = factory.Sequence(lambda n: f"Fulfiller {n}")


class BrandFactory(PartnerFactory):
    kind = PartnerKind.BRAND
    name = factory.Sequence(lambda n: f"Brand {n}")
    fulfillment_partner = factory.SubFactory(FulfillmentFactory)


class CreatorFactory(PartnerFactory):
    kind = PartnerKind.CREATOR
    name = factory.Sequence(lambda n: f"Creator {n}")


class EnrollmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Enrollment

    host_app = factory.SubFactory(HostAppFactory, brand_access=BrandAccess.INVITE_ONLY)
    brand = factory.SubFactory(BrandFactory)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    brand = factory.SubFactory(BrandFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    title = factory.Sequence(lambda n: f"Product {n}")
    category = "beauty"
    price = 1999
    currency = "USD"
    inventory = 100


class LiveSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LiveSession

    producer = factory.SubFactory(HostAppFactory)
    creator = factory.SubFactory(CreatorFactory)
    title = factory.Sequence(lambda n: f"Live show {n}")
    scheduled_start = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))

    @factory.post_generation
    def host_apps(self, create, extracted, **kwargs):
        if create:
            self.host_apps.set(extracted or [self.producer])


class CommissionPlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CommissionPlan

    name = factory.Sequence(lambda n: f"Plan {n}")
    platform_rate_bps = 800
    creator_rate_bps = 500
    fulfillment_rate_bps = 300
    effective_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
