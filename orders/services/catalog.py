"""Writes for the catalog: a brand's products, kept by the brand or its fulfillment partner."""

from django.db import IntegrityError, transaction

from livecommerce.api import check_currency, parse_amount
from livecommerce.errors import AppError, AppValidationError
from orders.models import Product
from orders.services.stock import stock_changed
from partners.choices import PartnerKind
from partners.models import Partner


def _catalog_brand(*, writer: Partner, brand_id: str | None) -> Partner:
    """The brand whose catalog ``writer`` writes: itself, or one it fulfils (named)."""
    if writer.kind == PartnerKind.BRAND:
        if brand_id not in (None, writer.pk):
            raise AppValidationError(
                "invalid_reference", "A brand adds products to its own catalog only.", attr="brand"
            )
        return writer
    if not brand_id:
        raise AppValidationError(
            "required", "Name the brand this product belongs to.", attr="brand"
        )
    brand = Partner.objects.filter(
        pk=brand_id, kind=PartnerKind.BRAND, fulfillment_partner=writer
    ).first()
    if brand is None:
        raise AppValidationError(
            "invalid_reference", "No such brand among the brands you fulfil.", attr="brand"
        )
    return brand


def _save_product(product: Product, *, update_fields: list[str] | None = None) -> None:
    # A savepoint, so that a duplicate SKU (two writers racing) is a clean 409, not a 500.
    try:
        with transaction.atomic():
            product.save(update_fields=update_fields)
    except IntegrityError as exc:
        # PostgreSQL names the constraint; SQLite names its columns instead.
        table = Product._meta.db_table
        if not any(
            name in str(exc)
            for name in ("product_sku_unique_per_brand", f"{table}.brand_id, {table}.sku")
        ):
            raise
        raise AppError(
            "duplicate_sku",
            f"Brand {product.brand_id} already has a product with SKU {product.sku!r}.",
            attr="sku",
        ) from None


@transaction.atomic
def product_create(
    *,
    writer: Partner,
    brand_id: str | None = None,
    sku: str,
    title: str,
    category: str = "",
    price: str,
    currency: str,
    inventory: int = 0,
) -> Product:
    """Add a product to a brand's catalog.

    A brand writes its own catalog; a fulfillment partner keeps the catalogs of the brands it
    fulfils and names the brand. The price is exact in the product's currency (never rounded).
    """
    brand = _catalog_brand(writer=writer, brand_id=brand_id)
    check_currency(currency)
    product = Product(
        brand=brand,
        sku=sku,
        title=title,
        category=category,
        price=parse_amount(price, currency, attr="price"),
        currency=currency,
        inventory=inventory,
    )
    _save_product(product)
    return product


@transaction.atomic
def product_update(*, product: Product, **changes) -> Product:
    """Change a product's SKU, title, category, price, currency or inventory.

    ``inventory`` is set, not added to, under the product row's lock (orders reserve under the
    same lock). A new currency needs a price in that currency in the same change, so an amount
    is never silently reinterpreted in another currency. Setting the inventory to or from zero
    publishes ``product.sold_out`` / ``product.back_in_stock``.
    """
    product = Product.objects.select_for_update().get(pk=product.pk)
    before = product.inventory
    currency = changes.get("currency", product.currency)
    if currency != product.currency:
        check_currency(currency)
        if "price" not in changes:
            raise AppValidationError(
                "required", "Send the price in the new currency too.", attr="price"
            )
    fields = []
    for field in ("sku", "title", "category", "currency", "inventory"):
        if field in changes:
            setattr(product, field, changes[field])
            fields.append(field)
    if "price" in changes:
        product.price = parse_amount(changes["price"], currency, attr="price")
        fields.append("price")
    if fields:
        _save_product(product, update_fields=[*fields, "updated"])
    stock_changed({product.pk: (before, product.inventory)})
    return product
