"""Money: the one place that knows about currencies, decimal places and rounding.

Every amount in the service is an ``int`` of *minor units* (cents, yen, fils...). Floats never
touch money: binary floating point cannot represent 0.10 exactly, so sums drift and audits fail.
Text from the outside world ("19.99") is converted here, exactly, and converted back here for
display. Every split of an amount is done with integer arithmetic whose parts add up *exactly*
to the whole, so the ledger always balances to the minor unit.

Pure Python on purpose: no Django imports, so it can be used (and tested) anywhere.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final


class MoneyError(ValueError):
    """Invalid money input from outside (API payloads, CSV files, config).

    ``code`` is a stable machine-readable reason (``invalid_currency``, ``invalid_amount``,
    ``too_many_decimal_places``, ``negative_amount``) that an API layer can return as-is;
    ``detail`` is a human-readable explanation. Subclasses ``ValueError`` so generic
    validation code still catches it.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


# ISO 4217 minor-unit exponents of active currencies, grouped by exponent to keep them readable.
# Fund/metal/testing codes (CLF, UYW, XAU, XTS...) are left out: nothing is sold in them.
_BY_EXPONENT: Final[dict[int, str]] = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF",
    2: "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN"
    " BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS"
    " GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR"
    " LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD"
    " PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN"
    " SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR"
    " ZMW ZWG",
    3: "BHD IQD JOD KWD LYD OMR TND",
}
CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    code: exp for exp, codes in _BY_EXPONENT.items() for code in codes.split()
}
"""Currency code -> number of decimal places of its minor unit (USD 2, JPY 0, KWD 3)."""

MAX_INTEGER_DIGITS: Final = 15
"""Bound on the major-unit part of parsed amounts: 10**15 * 10**3 still fits a signed int64."""

# [0-9] rather than \d: \d also matches non-ASCII digits such as "٣"; fullmatch rather than "$",
# which would accept a trailing newline.
_AMOUNT_RE: Final = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_BPS: Final = 10_000


def exponent(currency: str) -> int:
    """Number of decimal places of ``currency`` (an upper-case ISO 4217 code).

    Lower-case or unknown codes are rejected rather than normalised, so that one spelling is
    stored everywhere and a typo never silently becomes a different currency.
    """
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENTS:
        raise MoneyError("invalid_currency", f"unknown or non-ISO 4217 currency code {currency!r}")
    return CURRENCY_EXPONENTS[currency]


def to_minor(value: str | Decimal | int, currency: str) -> int:
    """Parse an amount in major units ("19.99" USD, "1999" JPY, "0.125" KWD) into minor units.

    Strict on purpose, since this is where outside input becomes money: only ``-?[0-9]+(.[0-9]+)?``
    (no spaces, signs "+", exponents, separators); never more decimal places than the currency
    has ("19.90" USD is fine, "1999.0" JPY is not), so nothing is ever rounded away; no negative
    sign at all (even "-0.00"); at most 15 integer digits (leading zeros count). ``int`` values
    are whole major units; ``Decimal`` values follow the same rules. A ``float`` raises
    ``TypeError``: it cannot carry an exact amount, so passing one is a programming error.
    """
    exp = exponent(currency)
    if isinstance(value, bool) or not isinstance(value, str | Decimal | int):
        raise TypeError(f"money amounts must be str, Decimal or int, not {type(value).__name__}")
    if isinstance(value, int):
        if value < 0:
            raise MoneyError("negative_amount", "amount must not be negative")
        if value >= 10**MAX_INTEGER_DIGITS:  # not len(str()): fails past 4300 digits
            raise MoneyError("invalid_amount", f"more than {MAX_INTEGER_DIGITS} integer digits")
        return value * 10**exp
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MoneyError("invalid_amount", "amount must be a finite number")
        sign, _, dec_exp = value.as_tuple()
        if sign:
            raise MoneyError("negative_amount", "amount must not be negative")
        if value and value.adjusted() >= MAX_INTEGER_DIGITS:
            raise MoneyError("invalid_amount", f"more than {MAX_INTEGER_DIGITS} integer digits")
        if isinstance(dec_exp, int) and -dec_exp > exp:  # checked before formatting 1E-999999
            raise MoneyError("too_many_decimal_places", f"{currency} has {exp} decimal places")
        value = format(value, "f")
    match = _AMOUNT_RE.fullmatch(value)
    if match is None:
        raise MoneyError("invalid_amount", f"not a plain decimal amount: {value[:40]!r}")
    minus, whole, frac = match.group(1), match.group(2), match.group(3) or ""
    if minus:
        raise MoneyError("negative_amount", "amount must not be negative")
    if len(whole) > MAX_INTEGER_DIGITS:
        raise MoneyError("invalid_amount", f"more than {MAX_INTEGER_DIGITS} integer digits")
    if len(frac) > exp:
        raise MoneyError("too_many_decimal_places", f"{currency} has {exp} decimal places")
    return int(whole) * 10**exp + int(frac.ljust(exp, "0") or "0")


def to_decimal_string(minor: int, currency: str) -> str:
    """Format minor units with exactly the currency's decimal places: "19.90", "1999", "0.125".

    Negative values (ledger balances can be) are formatted as "-5.00". This is the wire format
    for amounts: it round-trips through :func:`to_minor` for any non-negative value.
    """
    exp = exponent(currency)
    _require_int("minor", minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}" if exp else f"{sign}{whole}"


def to_decimal(minor: int, currency: str) -> Decimal:
    """Exact ``Decimal`` for minor units, with the currency's places (``Decimal("19.90")``)."""
    return Decimal(to_decimal_string(minor, currency))


def bps_share(amount: int, rate_bps: int) -> int:
    """``amount * rate_bps / 10000`` rounded half-even to the minor unit.

    Integer arithmetic only, so the result never depends on a ``decimal`` context's precision
    or rounding mode. Half-even (banker's rounding) has no upward bias over many lines.
    """
    _require_int("amount", amount, minimum=0)
    _require_int("rate_bps", rate_bps, minimum=0, maximum=_BPS)
    quotient, remainder = divmod(amount * rate_bps, _BPS)
    if 2 * remainder > _BPS or (2 * remainder == _BPS and quotient % 2 == 1):
        quotient += 1
    return quotient


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``; the parts sum to exactly ``total``.

    Largest-remainder (Hamilton) method: everyone gets the floor of their exact quota, and the
    few units left over go to the largest remainders; ties go to the larger weight, then to the
    earlier index, so the result is deterministic. When ``total <= sum(weights)`` no part ever
    exceeds its weight (leftover units only go to parts whose quota was not whole), which is
    what keeps refunds from reversing more of a share than is left of it.
    """
    _require_int("total", total, minimum=0)
    for weight in weights:
        _require_int("weight", weight, minimum=0)
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total:
            raise ValueError("cannot allocate a non-zero total over weights that are all zero")
        return [0] * len(weights)
    parts = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], -weights[i], i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


@dataclass(frozen=True, slots=True)
class LineSplit:
    """Who gets what of one order line, in minor units; the four shares sum to ``paid``."""

    paid: int
    platform_commission: int
    creator_commission: int
    fulfillment_fee: int
    brand_net: int


def split_line(
    *, paid: int, platform_rate_bps: int, creator_rate_bps: int, fulfillment_rate_bps: int
) -> LineSplit:
    """Split what a buyer paid for a line into commissions, fee, and the brand's net.

    Each of the three shares is ``bps_share(paid, rate)`` (half-even) and the brand takes the
    rest, so the four always add up to ``paid``. Edge case: when the rates add up to (nearly)
    10000 on a line of a few minor units, two shares rounding half up could leave the brand
    -1 (e.g. paid=3 at 5000/5000). Then one unit is taken back from the share that was rounded
    up the most (the later field on ties), so ``brand_net`` is never negative and each share
    stays within one minor unit of its exact value.
    """
    _require_int("paid", paid, minimum=0)
    rates = (platform_rate_bps, creator_rate_bps, fulfillment_rate_bps)
    for rate in rates:
        _require_int("rate_bps", rate, minimum=0, maximum=_BPS)
    if sum(rates) > _BPS:
        raise ValueError(f"rates add up to {sum(rates)} bps, more than 10000 (100%)")
    shares = [bps_share(paid, rate) for rate in rates]
    if sum(shares) > paid:  # at most one unit over: see docstring
        rounded_up = [share * _BPS - paid * rate for share, rate in zip(shares, rates, strict=True)]
        worst = max(range(len(shares)), key=lambda i: (rounded_up[i], i))
        shares[worst] -= 1
    platform, creator, fulfillment = shares
    return LineSplit(paid, platform, creator, fulfillment, paid - platform - creator - fulfillment)


def reverse_in_proportion(*, remaining: Mapping[str, int], amount: int) -> dict[str, int]:
    """How much of each share of a line a (partial) refund of ``amount`` reverses.

    ``remaining`` is what is still un-reversed of each share (e.g. the fields of a
    :class:`LineSplit` minus earlier reversals); ``0 <= amount <= sum(remaining)``. Uses
    :func:`allocate`, so the reversals sum to ``amount``, none exceeds what is left of its
    share, and the refund that brings the line to zero reverses exactly what is left: any
    sequence of partial refunds adding up to what was paid reverses exactly what was posted.
    Keys keep their order.
    """
    _require_int("amount", amount, minimum=0)
    if amount > sum(remaining.values()):
        raise ValueError(f"refund {amount} exceeds the un-reversed {sum(remaining.values())}")
    return dict(zip(remaining, allocate(amount, list(remaining.values())), strict=True))


def spread_fixed(*, amount: int, weights: Sequence[int]) -> list[int]:
    """Spread an order-level fixed amount (e.g. a flat per-order fee) over the order's lines.

    ``weights`` are the lines' paid amounts; the parts sum to exactly ``amount`` (largest
    remainder, see :func:`allocate`), and while ``amount`` does not exceed the order total no
    line is charged more than it paid. An order of zero-paid lines can only carry a zero amount.
    """
    return allocate(amount, weights)


def _require_int(
    name: str, value: object, *, minimum: int | None = None, maximum: int | None = None
) -> None:
    """Guard for internal arithmetic: wrong types are bugs (TypeError), bad ranges ValueError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of minor units, not {type(value).__name__}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "-inf" if minimum is None else minimum
        high = "inf" if maximum is None else maximum
        raise ValueError(f"{name}={value} is outside [{low}, {high}]")
