"""Commission plans: setting them up, and choosing the one in force when an order is paid.

A plan's scope is any of host app, brand, category and currency. At payment the most specific
plan in force applies: the one matching the most scope fields; ties go to the latest
``effective_from``, then to the newest plan. Plans are chosen **per line**, because a category
plan is about the lines of its category: an order with a shoe and a lipstick may take the
"shoes" plan for one line and the brand's plan for the other. The order's own plan (its fixed
fulfillment fee, ``order.commission_plan_id``) is the most specific of its lines' plans.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from audit.services import audit_record, created_changes, field_changes, field_values
from commissions.models import CommissionApplication, CommissionPlan, LedgerEntry
from livecommerce import rows
from livecommerce.api import check_currency, parse_amount
from livecommerce.errors import AppError, AppValidationError
from orders.models import Order, OrderLine
from partners.choices import PartnerKind
from partners.models import Partner

MAX_BPS = 10_000
_SCOPE_FIELDS = ("host_app_id", "brand_id", "category", "currency")
# What the audit trail records of a plan.
_AUDITED_FIELDS = (
    "name",
    "platform_rate_bps",
    "creator_rate_bps",
    "fulfillment_rate_bps",
    "fulfillment_fee_fixed",
    "currency",
    "host_app_id",
    "brand_id",
    "category",
    "effective_from",
    "effective_to",
)


def _rank(plan: CommissionPlan) -> tuple:
    specificity = sum(1 for field in _SCOPE_FIELDS if getattr(plan, field))
    return (specificity, plan.effective_from, plan.created, plan.pk)


@cache
def _plans_in_force_sql() -> str:
    """The text of ``plans_in_force``'s query, made once: read at every payment, and building
    it through the ORM (five filters, three of them ORs) cost more than the query itself."""
    meta = CommissionPlan._meta
    names = ("effective_from", "effective_to", "host_app", "brand", "currency")
    column = {name: meta.get_field(name).column for name in names}
    return (
        # The columns by name, not ``*``: a prepared ``*`` fails once a migration adds a column.
        f"SELECT {rows.select_list(CommissionPlan, 'p', connection)}"  # noqa: S608 (names only)
        f" FROM {meta.db_table} p"
        f" WHERE {column['effective_from']} <= %s"
        f" AND ({column['effective_to']} IS NULL OR {column['effective_to']} > %s)"
        f" AND ({column['host_app']} IS NULL OR {column['host_app']} = %s)"
        f" AND ({column['brand']} IS NULL OR {column['brand']} = %s)"
        f" AND ({column['currency']} = '' OR {column['currency']} = %s)"
    )


def plans_in_force(*, order: Order, at: datetime) -> list[CommissionPlan]:
    """Plans in force at ``at`` whose host app, brand and currency scope match ``order``
    (in no particular order: ``_rank`` decides between them)."""
    at_value = connection.ops.adapt_datetimefield_value(at)
    params = [at_value, at_value, order.host_app_id, order.brand_id, order.currency]
    return list(CommissionPlan.objects.raw(_plans_in_force_sql(), params))


def commission_plan_apply(*, order: Order) -> CommissionApplication:
    """Choose the plans in force for ``order`` at payment and copy their rates onto its lines.

    Call inside the payment's transaction with the order row locked. Copies the rates actually
    applied: no creator on the order means a creator rate of 0 (the brand keeps that share), and
    no fulfillment partner means a fulfillment rate and fixed fee of 0. Records the terms in a
    ``CommissionApplication`` and sets ``order.commission_plan_id``. Raises
    ``AppError("no_commission_plan")`` (422) when some line has no plan in force. Once the sale
    is posted this changes nothing: posted history is final.
    """
    application = CommissionApplication.objects.filter(order=order).first()
    if application is not None and LedgerEntry.objects.filter(order=order, kind="sale").exists():
        return application
    application, _ = commission_terms_apply(
        order=order, terms=commission_terms(order=order, lines=order.lines.all())
    )
    return application


@dataclass(frozen=True, slots=True)
class CommissionTerms:
    """The plans chosen for an order at payment (``commission_terms``), not written yet."""

    plan: CommissionPlan
    line_plans: dict[str, CommissionPlan]
    lines: list[OrderLine]


def commission_terms(*, order: Order, lines: Iterable[OrderLine]) -> CommissionTerms:
    """Choose the plans in force for ``order`` (one read) for each of its ``lines`` (all of
    them, as saved); raises ``AppError("no_commission_plan")`` (422) when some line has none.
    Writes nothing, so a payment refused here has nothing to roll back."""
    at = order.paid_at or timezone.now()
    candidates = plans_in_force(order=order, at=at)
    lines = sorted(lines, key=lambda line: (line.position, line.pk))
    line_plans: dict[str, CommissionPlan] = {}
    for line in lines:
        matching = [p for p in candidates if p.category in ("", line.category)]
        if not matching:
            raise AppError(
                "no_commission_plan",
                f"No commission plan is in force for line {line.pk} "
                f"(category {line.category or 'none'!r}).",
            )
        line_plans[line.pk] = max(matching, key=_rank)
    if line_plans:
        plan = max(line_plans.values(), key=_rank)
    else:
        general = [p for p in candidates if not p.category]
        if not general:
            raise AppError("no_commission_plan")
        plan = max(general, key=_rank)
    return CommissionTerms(plan=plan, line_plans=line_plans, lines=lines)


def commission_terms_apply(
    *, order: Order, terms: CommissionTerms, save_order: bool = True
) -> tuple[CommissionApplication, list[OrderLine]]:
    """Copy the chosen rates onto the lines (one UPDATE), set ``order.commission_plan_id``
    (saved unless ``save_order`` is False: the caller saves it with its own changes) and record
    the ``CommissionApplication`` (one upsert, no savepoint); returns it with the lines as
    written, for the sale's posting to use without reading them again."""
    lines = terms.lines
    # One UPDATE per distinct set of rates, usually one for the whole order (``bulk_update``'s
    # CASE per field and line cost more to build than the rest of the plan choice).
    same_rates: dict[tuple[int, int, int], list[str]] = {}
    for line in lines:
        line_plan = terms.line_plans[line.pk]
        line.platform_rate_bps = line_plan.platform_rate_bps
        line.creator_rate_bps = line_plan.creator_rate_bps if order.creator_id else 0
        line.fulfillment_rate_bps = (
            line_plan.fulfillment_rate_bps if order.fulfillment_partner_id else 0
        )
        rates = (line.platform_rate_bps, line.creator_rate_bps, line.fulfillment_rate_bps)
        same_rates.setdefault(rates, []).append(line.pk)
    for (platform, creator, fulfillment), line_ids in same_rates.items():
        OrderLine.objects.filter(pk__in=line_ids).update(
            platform_rate_bps=platform, creator_rate_bps=creator, fulfillment_rate_bps=fulfillment
        )
    order.commission_plan_id = terms.plan.pk
    if save_order:
        order.save(update_fields=["commission_plan_id"])
    application = CommissionApplication(
        order=order,
        plan=terms.plan,
        fulfillment_fee_fixed=terms.plan.fulfillment_fee_fixed
        if order.fulfillment_partner_id
        else 0,
        line_plans={line_id: p.pk for line_id, p in terms.line_plans.items()},
    )
    CommissionApplication.objects.bulk_create(
        [application],
        update_conflicts=True,
        unique_fields=["order"],
        update_fields=["plan", "fulfillment_fee_fixed", "line_plans"],
    )
    return application, lines


# --- Writing plans (ops) -------------------------------------------------------------------------


def _partner(partner_id: str | None, *, kind: str, attr: str) -> Partner | None:
    if partner_id is None:
        return None
    partner = Partner.objects.filter(pk=partner_id, kind=kind).first()
    if partner is None:
        raise AppValidationError("invalid_reference", f"No {kind} partner {partner_id}.", attr=attr)
    return partner


def _apply_fields(plan: CommissionPlan, fields: dict) -> CommissionPlan:
    """Set ``fields`` on ``plan`` and check the result as a whole (create and edit alike)."""
    fee_text = fields.pop("fulfillment_fee_fixed", None)
    for name in ("host_app", "brand"):
        if name in fields:
            kind = PartnerKind.HOST_APP if name == "host_app" else PartnerKind.BRAND
            setattr(plan, name, _partner(fields.pop(name), kind=kind, attr=name))
    if "currency" in fields:
        currency = fields.pop("currency") or ""
        if currency:
            check_currency(currency)
        plan.currency = currency
    if "category" in fields:
        plan.category = fields.pop("category") or ""
    for name, value in fields.items():
        setattr(plan, name, value)

    if fee_text is not None:
        plan.fulfillment_fee_fixed = _parse_fee(fee_text, plan.currency)
    elif plan.fulfillment_fee_fixed and not plan.currency:
        raise AppValidationError(
            "currency_required", "A plan with a fixed fee names its currency.", attr="currency"
        )
    rates = (plan.platform_rate_bps, plan.creator_rate_bps, plan.fulfillment_rate_bps)
    if sum(rates) > MAX_BPS:
        raise AppValidationError(
            "rates_exceed_100_percent",
            f"The rates add up to {sum(rates)} bps, more than 10000 (100%).",
            attr="platform_rate_bps",
        )
    if plan.effective_to is not None and plan.effective_to <= plan.effective_from:
        raise AppValidationError(
            "invalid_effective_range",
            "effective_to must be after effective_from.",
            attr="effective_to",
        )
    return plan


def _parse_fee(text: str, currency: str) -> int:
    if not currency:
        # Without a currency only a zero fee makes sense ("0", "0.00").
        if isinstance(text, str) and re.fullmatch(r"0+(\.0+)?", text):
            return 0
        raise AppValidationError(
            "currency_required", "A plan with a fixed fee names its currency.", attr="currency"
        )
    return parse_amount(text, currency, attr="fulfillment_fee_fixed")


@transaction.atomic
def commission_plan_create(
    *,
    platform_rate_bps: int,
    creator_rate_bps: int = 0,
    fulfillment_rate_bps: int = 0,
    fulfillment_fee_fixed: str = "0",
    name: str = "",
    currency: str | None = None,
    host_app: str | None = None,
    brand: str | None = None,
    category: str | None = None,
    effective_from: datetime | None = None,
    effective_to: datetime | None = None,
    actor=None,
) -> CommissionPlan:
    """Create a plan (ops). It applies to orders paid while it is in force, from then on.

    ``actor`` (the API caller) is recorded in the audit trail with the plan's terms.
    """
    plan = CommissionPlan(name=name or "Commission plan")
    _apply_fields(
        plan,
        {
            "platform_rate_bps": platform_rate_bps,
            "creator_rate_bps": creator_rate_bps,
            "fulfillment_rate_bps": fulfillment_rate_bps,
            "fulfillment_fee_fixed": fulfillment_fee_fixed,
            "currency": currency,
            "host_app": host_app,
            "brand": brand,
            "category": category,
            "effective_from": effective_from or timezone.now(),
            "effective_to": effective_to,
        },
    )
    plan.save()
    audit_record(
        actor=actor,
        action="commission_plan.created",
        target=plan,
        changes=created_changes(plan, _AUDITED_FIELDS),
    )
    return plan


@transaction.atomic
def commission_plan_update(*, plan: CommissionPlan, actor=None, **fields) -> CommissionPlan:
    """Edit a plan (ops). Orders already paid keep the rates copied onto their lines and what
    was posted; only orders paid from now on see the change. The audit trail records who
    changed which terms, from what to what."""
    plan = CommissionPlan.objects.select_for_update().get(pk=plan.pk)
    before = field_values(plan, _AUDITED_FIELDS)
    _apply_fields(plan, dict(fields))
    plan.save()
    audit_record(
        actor=actor,
        action="commission_plan.updated",
        target=plan,
        changes=field_changes(before, plan),
    )
    return plan
