"""factory_boy factories for every model the tests build."""

from datetime import timedelta

import factory
from django.utils import timezone

from commissions.models import CommissionPlan
from orders.models import LiveSession, Order, OrderLine, Product, Refund, RefundLine
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


class OrderFactory(factory.django.DjangoModelFactory):
    """A pending order with no lines; ``tests.flows.make_order`` adds lines and totals, and moves
    orders on only through the order services."""

    class Meta:
        model = Order

    host_app = factory.SubFactory(HostAppFactory)
    brand = factory.SubFactory(BrandFactory)
    fulfillment_partner = factory.LazyAttribute(lambda o: o.brand.fulfillment_partner)
    currency = "USD"
    subtotal = 0
    shipping_amount = 0
    tax_amount = 0
    total = factory.LazyAttribute(lambda o: o.subtotal + o.shipping_amount + o.tax_amount)


class OrderLineFactory(factory.django.DjangoModelFactory):
    """One line of an order, selling a product of the order's brand at its catalog price."""

    class Meta:
        model = OrderLine

    order = factory.SubFactory(OrderFactory)
    product = factory.SubFactory(
        ProductFactory,
        brand=factory.SelfAttribute("..order.brand"),
        currency=factory.SelfAttribute("..order.currency"),
    )
    sku = factory.LazyAttribute(lambda o: o.product.sku)
    title = factory.LazyAttribute(lambda o: o.product.title)
    category = factory.LazyAttribute(lambda o: o.product.category)
    quantity = 1
    unit_price = factory.LazyAttribute(lambda o: o.product.price)
    subtotal = factory.LazyAttribute(lambda o: o.unit_price * o.quantity)
    position = factory.Sequence(lambda n: n % 100)


class RefundFactory(factory.django.DjangoModelFactory):
    """A refund record as given, for the ledger's own tests; the order services write real ones
    (``tests.flows.refund``)."""

    class Meta:
        model = Refund

    order = factory.SubFactory(OrderFactory)
    amount = 100
    reason = "test"


class RefundLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RefundLine

    refund = factory.SubFactory(RefundFactory)
    line = factory.SubFactory(OrderLineFactory, order=factory.SelfAttribute("..refund.order"))
    amount = 100
