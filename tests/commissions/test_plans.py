"""Choosing the commission plan at payment, and plans never rewriting posted history."""

from datetime import timedelta

import pytest
from django.utils import timezone

from commissions.models import CommissionApplication, LedgerLine
from commissions.plans import commission_plan_apply, commission_plan_update
from commissions.selectors import order_breakdown
from livecommerce.errors import AppError
from tests import factories, flows

NOW = timezone.now


@pytest.fixture
def brand(db):
    return factories.BrandFactory()


@pytest.fixture
def host_app(db):
    return factories.HostAppFactory()


def plan(**kw):
    kw.setdefault("effective_from", NOW() - timedelta(days=5))
    return factories.CommissionPlanFactory(**kw)


def rates(order):
    return [
        (line.category, line.platform_rate_bps, line.creator_rate_bps, line.fulfillment_rate_bps)
        for line in order.lines.order_by("position")
    ]


def test_the_most_specific_plan_in_force_applies(brand, host_app):
    plan(platform_rate_bps=1000)
    plan(platform_rate_bps=900, brand=brand)
    best = plan(platform_rate_bps=700, brand=brand, currency="USD")
    plan(platform_rate_bps=100, brand=brand, currency="USD", host_app=factories.HostAppFactory())
    plan(platform_rate_bps=200, brand=brand, effective_to=NOW() - timedelta(days=1))  # ended
    plan(platform_rate_bps=300, brand=brand, effective_from=NOW() + timedelta(days=1))  # not yet
    creator = factories.CreatorFactory()
    order = flows.make_order(brand=brand, host_app=host_app, creator=creator)

    flows.pay(order)

    order.refresh_from_db()
    assert order.commission_plan_id == best.pk
    assert rates(order) == [("beauty", 700, 500, 300)]


def test_ties_go_to_the_latest_effective_from_then_the_newest(brand, host_app):
    plan(platform_rate_bps=100, brand=brand, effective_from=NOW() - timedelta(days=9))
    later = plan(platform_rate_bps=200, brand=brand, effective_from=NOW() - timedelta(days=2))
    order = flows.make_order(brand=brand, host_app=host_app)
    assert commission_plan_apply(order=order).plan == later

    newest = plan(platform_rate_bps=300, brand=brand, effective_from=later.effective_from)
    order = flows.make_order(brand=brand, host_app=host_app)
    assert commission_plan_apply(order=order).plan == newest


def test_a_category_plan_applies_to_the_lines_of_its_category(brand, host_app):
    general = plan(platform_rate_bps=1000)
    shoes = plan(platform_rate_bps=1500, category="shoes", fulfillment_rate_bps=0)
    creator = factories.CreatorFactory()
    order = flows.make_order(
        brand=brand,
        host_app=host_app,
        creator=creator,
        items=[(1000, 1, "beauty"), (5000, 1, "shoes")],
    )

    application = commission_plan_apply(order=order)

    assert rates(order) == [("beauty", 1000, 500, 300), ("shoes", 1500, 500, 0)]
    lines = list(order.lines.order_by("position"))
    assert application.line_plans == {lines[0].pk: general.pk, lines[1].pk: shoes.pk}
    assert application.plan == shoes  # the order's plan: the most specific of its lines'


def test_no_plan_in_force_means_the_order_cannot_be_paid(brand, host_app):
    plan(category="shoes")  # covers shoes only
    order = flows.make_order(brand=brand, host_app=host_app, items=[(1000, 1, "beauty")])

    with pytest.raises(AppError) as error:
        flows.pay(order)

    assert error.value.code == "no_commission_plan"
    assert error.value.status_code == 422
    assert rates(order) == [("beauty", None, None, None)]
    assert not CommissionApplication.objects.filter(order=order).exists()


def test_without_a_fulfillment_partner_the_brand_keeps_fee_and_shipping(host_app):
    brand = factories.BrandFactory(fulfillment_partner=None)
    plan(currency="USD", fulfillment_fee_fixed=150)
    order = flows.pay(flows.make_order(brand=brand, host_app=host_app, shipping=500))

    assert rates(order) == [("beauty", 800, 0, 0)]
    assert flows.pending(brand, order=order) == 3998 - 320 + 500


def test_a_plan_edited_after_payment_changes_nothing_posted(brand, host_app):
    the_plan = plan(currency="USD", fulfillment_fee_fixed=150)
    order = flows.pay(
        flows.make_order(brand=brand, host_app=host_app, creator=factories.CreatorFactory())
    )
    before = order_breakdown(order=order)
    posted = list(LedgerLine.objects.filter(order=order).values_list("id", "debit", "credit"))

    commission_plan_update(
        plan=the_plan,
        platform_rate_bps=3000,
        creator_rate_bps=0,
        fulfillment_fee_fixed="9.99",
        category="other",
    )

    after = order_breakdown(order=order)
    assert after["lines"] == before["lines"]
    assert after["totals"] == before["totals"]
    assert after["plan"]["fulfillment_fee_fixed"] == 150
    assert list(LedgerLine.objects.filter(order=order).values_list("id", "debit", "credit")) == (
        posted
    )
    # and a refund after the edit reverses what was posted, not the new rates
    flows.cancel(order)
    assert set(flows.account_balances(order=order).values()) == {0}
