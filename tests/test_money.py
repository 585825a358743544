"""Tests for livecommerce.money: exact parsing/formatting, half-even rounding, exact splits."""

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livecommerce import money
from livecommerce.money import (
    CURRENCY_EXPONENTS,
    LineSplit,
    MoneyError,
    allocate,
    bps_share,
    exponent,
    reverse_in_proportion,
    split_line,
    spread_fixed,
    to_decimal,
    to_decimal_string,
    to_minor,
)

SHARE_KEYS = ("platform_commission", "creator_commission", "fulfillment_fee", "brand_net")


def _code(excinfo: pytest.ExceptionInfo[MoneyError]) -> str:
    return excinfo.value.code


# --- currencies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("HUF", 2),
        ("TWD", 2),
        ("IDR", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("VND", 0),
        ("CLP", 0),
        ("ISK", 0),
        ("UGX", 0),
        ("XAF", 0),
        ("XOF", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("LYD", 3),
        ("IQD", 3),
    ],
)
def test_exponent_iso_4217(currency: str, expected: int) -> None:
    assert exponent(currency) == expected
    assert CURRENCY_EXPONENTS[currency] == expected


def test_common_currencies_present() -> None:
    common = {
        *("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK"),
        *("HUF", "MXN", "BRL", "INR", "CNY", "HKD", "SGD", "TWD", "THB", "MYR", "IDR", "PHP"),
        *("VND", "JPY", "KRW", "CLP", "ISK", "UGX", "XAF", "XOF", "KWD", "BHD", "JOD", "OMR"),
        *("TND", "LYD", "IQD", "AED", "SAR", "ZAR", "TRY", "ILS", "EGP", "NGN", "KES"),
    }
    assert set(common) <= set(CURRENCY_EXPONENTS)
    assert all(len(c) == 3 and c.isascii() and c.isupper() for c in CURRENCY_EXPONENTS)
    assert set(CURRENCY_EXPONENTS.values()) == {0, 2, 3}


@pytest.mark.parametrize(
    "currency", ["usd", "Usd", "XXX", "US", "USDD", "", " USD", "HRK", None, 840]
)
def test_exponent_rejects_unknown_or_non_upper_case(currency: object) -> None:
    with pytest.raises(MoneyError) as excinfo:
        exponent(currency)  # type: ignore[arg-type]
    assert _code(excinfo) == "invalid_currency"
    assert excinfo.value.detail
    assert isinstance(excinfo.value, ValueError)


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("19.99", "USD", 1999),
        ("19.90", "USD", 1990),
        ("19.9", "USD", 1990),
        ("19", "USD", 1900),
        ("0", "USD", 0),
        ("0.01", "USD", 1),
        ("007.50", "EUR", 750),
        ("1999", "JPY", 1999),
        ("0", "JPY", 0),
        ("0.125", "KWD", 125),
        ("1.5", "KWD", 1500),
        ("12", "KWD", 12000),
        ("999999999999999.99", "USD", 99999999999999999),
        (Decimal("19.99"), "USD", 1999),
        (Decimal("19.90"), "USD", 1990),
        (Decimal("1E+3"), "JPY", 1000),
        (Decimal("0.125"), "KWD", 125),
        (Decimal("0E+20"), "USD", 0),
        (5, "USD", 500),
        (5, "JPY", 5),
        (5, "KWD", 5000),
        (0, "EUR", 0),
    ],
)
def test_to_minor_examples(value: str | Decimal | int, currency: str, expected: int) -> None:
    result = to_minor(value, currency)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        "1,000.00",
        "1.",
        ".5",
        "+1.00",
        " 1.00",
        "1.00 ",
        "1.00\n",
        "1e3",
        "1E+3",
        "NaN",
        "Infinity",
        "-",
        "--1",
        "1.2.3",
        "١٢",  # Arabic-Indic digits: \d would accept them, int() would parse them
        "1_000",
        "0x10",
        "1" * 16,
        "0" * 16,  # leading zeros count: the input itself is suspicious
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        Decimal("1E+15"),
        Decimal("1E+999999"),
        10**15,
        pytest.param(10**5000, id="int-5001-digits"),
    ],
)
def test_to_minor_invalid_amount(value: object) -> None:
    with pytest.raises(MoneyError) as excinfo:
        to_minor(value, "USD")  # type: ignore[arg-type]
    assert _code(excinfo) == "invalid_amount"


def test_to_minor_accepts_fifteen_integer_digits() -> None:
    assert to_minor("9" * 15, "KWD") == int("9" * 15) * 1000
    assert to_minor(10**15 - 1, "USD") == (10**15 - 1) * 100
    assert to_minor(Decimal("9" * 15), "JPY") == int("9" * 15)


@pytest.mark.parametrize(
    "value", ["-1", "-0.01", "-0", "-0.00", "-19.999", Decimal("-1.00"), Decimal("-0"), -1]
)
def test_to_minor_negative_amount(value: str | Decimal | int) -> None:
    with pytest.raises(MoneyError) as excinfo:
        to_minor(value, "USD")
    assert _code(excinfo) == "negative_amount"


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("19.999", "USD"),
        ("19.990", "USD"),  # strict: trailing zeros beyond the currency's places are rejected
        ("1999.0", "JPY"),
        ("0.1", "JPY"),
        ("0.1250", "KWD"),
        (Decimal("19.999"), "USD"),
        (Decimal("1999.0"), "JPY"),
        (Decimal("1E-999999"), "USD"),
    ],
)
def test_to_minor_too_many_decimal_places(value: str | Decimal, currency: str) -> None:
    with pytest.raises(MoneyError) as excinfo:
        to_minor(value, currency)
    assert _code(excinfo) == "too_many_decimal_places"
    assert currency in excinfo.value.detail


@pytest.mark.parametrize("value", [19.99, 0.0, 1.0, True, None, b"1.00", [1]])
def test_to_minor_rejects_float_and_other_types_as_programming_errors(value: object) -> None:
    with pytest.raises(TypeError):
        to_minor(value, "USD")  # type: ignore[arg-type]


def test_to_minor_checks_currency_first() -> None:
    with pytest.raises(MoneyError) as excinfo:
        to_minor("1.00", "usd")
    assert _code(excinfo) == "invalid_currency"


# --- formatting --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1999, "USD", "19.99"),
        (1990, "USD", "19.90"),
        (5, "USD", "0.05"),
        (0, "USD", "0.00"),
        (-500, "USD", "-5.00"),
        (-5, "USD", "-0.05"),
        (1999, "JPY", "1999"),
        (0, "JPY", "0"),
        (-7, "JPY", "-7"),
        (125, "KWD", "0.125"),
        (1500, "KWD", "1.500"),
        (-1, "KWD", "-0.001"),
        (99999999999999999, "USD", "999999999999999.99"),
    ],
)
def test_to_decimal_string_and_to_decimal(minor: int, currency: str, expected: str) -> None:
    assert to_decimal_string(minor, currency) == expected
    as_decimal = to_decimal(minor, currency)
    assert as_decimal == Decimal(expected)
    assert str(as_decimal) == expected  # keeps exactly the currency's places
    assert as_decimal.as_tuple().exponent == -exponent(currency)


@pytest.mark.parametrize("minor", [19.99, Decimal(1999), "1999", True])
def test_to_decimal_string_rejects_non_int(minor: object) -> None:
    with pytest.raises(TypeError):
        to_decimal_string(minor, "USD")  # type: ignore[arg-type]


def test_to_decimal_string_rejects_unknown_currency() -> None:
    with pytest.raises(MoneyError) as excinfo:
        to_decimal_string(100, "eur")
    assert _code(excinfo) == "invalid_currency"


currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


@given(currency=currencies, data=st.data())
def test_round_trip_string(currency: str, data: st.DataObject) -> None:
    limit = 10**money.MAX_INTEGER_DIGITS * 10 ** exponent(currency) - 1
    minor = data.draw(st.integers(min_value=0, max_value=limit))
    text = to_decimal_string(minor, currency)
    assert to_minor(text, currency) == minor
    assert to_minor(to_decimal(minor, currency), currency) == minor
    whole, _, frac = text.partition(".")
    assert len(frac) == exponent(currency)
    assert whole.isdigit() and (whole == "0" or not whole.startswith("0"))


@given(currency=currencies, minor=st.integers(min_value=-(10**20), max_value=10**20))
def test_to_decimal_is_exact(currency: str, minor: int) -> None:
    assert to_decimal(minor, currency) * 10 ** exponent(currency) == minor


# --- half-even shares --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rate_bps", "expected"),
    [
        (1, 5000, 0),  # 0.5 -> 0 (even)
        (3, 5000, 2),  # 1.5 -> 2 (even)
        (5, 5000, 2),  # 2.5 -> 2 (even)
        (7, 5000, 4),  # 3.5 -> 4 (even)
        (25, 1000, 2),  # 2.5 -> 2
        (35, 1000, 4),  # 3.5 -> 4
        (26, 1000, 3),  # 2.6 -> 3
        (24, 1000, 2),  # 2.4 -> 2
        (1999, 1500, 300),  # 299.85 -> 300
        (1999, 1000, 200),  # 199.9 -> 200
        (10001, 1, 1),  # 1.0001 -> 1
        (5000, 1, 0),  # 0.5 -> 0
        (15000, 1, 2),  # 1.5 -> 2
        (1234, 0, 0),
        (1234, 10000, 1234),
        (0, 10000, 0),
    ],
)
def test_bps_share_half_even(amount: int, rate_bps: int, expected: int) -> None:
    assert bps_share(amount, rate_bps) == expected


@given(amount=st.integers(0, 10**18), rate=st.integers(0, 10_000))
def test_bps_share_matches_exact_half_even(amount: int, rate: int) -> None:
    exact = Decimal(amount * rate) / Decimal(10_000)  # exact: division by 10**4 terminates
    assert bps_share(amount, rate) == int(exact.to_integral_value(rounding=ROUND_HALF_EVEN))
    assert abs(bps_share(amount, rate) * 10_000 - amount * rate) <= 5_000


@pytest.mark.parametrize(("amount", "rate"), [(-1, 100), (100, -1), (100, 10_001)])
def test_bps_share_rejects_out_of_range(amount: int, rate: int) -> None:
    with pytest.raises(ValueError):
        bps_share(amount, rate)


@pytest.mark.parametrize(("amount", "rate"), [(1.5, 100), (100, 100.0), (Decimal(1), 100)])
def test_bps_share_rejects_non_int(amount: object, rate: object) -> None:
    with pytest.raises(TypeError):
        bps_share(amount, rate)  # type: ignore[arg-type]


# --- allocate ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),  # tie in remainder and weight -> earlier index
        (2, [1, 1, 1], [1, 1, 0]),
        (1, [1, 2], [0, 1]),  # 1/3 vs 2/3: larger remainder
        (1, [1, 1, 2], [0, 0, 1]),  # 0.25, 0.25, 0.5
        (2, [1, 1, 2], [1, 0, 1]),  # remainders 0.5, 0.5, 0 -> earlier index
        (1, [3, 1, 2, 2], [1, 0, 0, 0]),  # all quotas < 1: largest remainder wins
        (3, [2, 1, 2, 1], [1, 1, 1, 0]),  # 1, .5, 1, .5: tie -> earlier index
        (10, [0, 5, 5], [0, 5, 5]),
        (10, [7], [10]),
        (0, [1, 2, 3], [0, 0, 0]),
        (0, [0, 0], [0, 0]),
        (0, [], []),
        (6, [1, 2, 3], [1, 2, 3]),
    ],
)
def test_allocate_examples(total: int, weights: list[int], expected: list[int]) -> None:
    assert allocate(total, weights) == expected


def test_allocate_tie_goes_to_larger_weight() -> None:
    # weights 1 and 3 with total 2 over sum 4: quotas 0.5 and 1.5 -> equal remainders; the larger
    # weight gets the unit.
    assert allocate(2, [1, 3]) == [0, 2]
    assert allocate(2, [3, 1]) == [2, 0]


def test_allocate_errors() -> None:
    with pytest.raises(ValueError):
        allocate(1, [0, 0])
    with pytest.raises(ValueError):
        allocate(1, [])
    with pytest.raises(ValueError):
        allocate(-1, [1])
    with pytest.raises(ValueError):
        allocate(1, [1, -1])
    with pytest.raises(TypeError):
        allocate(1, [1.0])  # type: ignore[list-item]


@given(
    total=st.integers(0, 10**12),
    weights=st.lists(st.integers(0, 10**9), min_size=1, max_size=12).filter(any),
)
def test_allocate_properties(total: int, weights: list[int]) -> None:
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    weight_sum = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert part >= 0
        # floor or floor + 1 of the exact quota total * weight / weight_sum
        assert part * weight_sum <= total * weight + weight_sum
        assert part * weight_sum > total * weight - weight_sum
        if weight == 0:
            assert part == 0
        if total <= weight_sum:
            assert part <= weight
    assert allocate(total, weights) == parts  # deterministic


@given(weights=st.lists(st.integers(0, 10**6), min_size=1, max_size=10))
def test_allocate_whole_sum_returns_weights(weights: list[int]) -> None:
    assert allocate(sum(weights), weights) == weights


# --- split_line --------------------------------------------------------------------------------


def test_split_line_example() -> None:
    split = split_line(
        paid=1999, platform_rate_bps=1000, creator_rate_bps=1500, fulfillment_rate_bps=250
    )
    # 199.9 -> 200, 299.85 -> 300, 49.975 -> 50
    assert split == LineSplit(
        paid=1999,
        platform_commission=200,
        creator_commission=300,
        fulfillment_fee=50,
        brand_net=1449,
    )


def test_split_line_half_even() -> None:
    split = split_line(
        paid=5, platform_rate_bps=5000, creator_rate_bps=1000, fulfillment_rate_bps=0
    )
    assert (split.platform_commission, split.creator_commission, split.brand_net) == (2, 0, 3)


def test_split_line_never_leaves_brand_negative() -> None:
    # 1.5 + 1.5 both round half-even up to 2: 4 > 3; one unit is taken back from the later share.
    split = split_line(
        paid=3, platform_rate_bps=5000, creator_rate_bps=5000, fulfillment_rate_bps=0
    )
    assert split == LineSplit(3, 2, 1, 0, 0)


def test_split_line_is_frozen() -> None:
    split = split_line(paid=100, platform_rate_bps=0, creator_rate_bps=0, fulfillment_rate_bps=0)
    assert split == LineSplit(100, 0, 0, 0, 100)
    with pytest.raises(AttributeError):
        split.brand_net = 0  # type: ignore[misc]


def test_split_line_rejects_rates_over_100_percent() -> None:
    with pytest.raises(ValueError):
        split_line(paid=100, platform_rate_bps=5000, creator_rate_bps=5000, fulfillment_rate_bps=1)
    with pytest.raises(ValueError):
        split_line(paid=-1, platform_rate_bps=0, creator_rate_bps=0, fulfillment_rate_bps=0)
    with pytest.raises(ValueError):
        split_line(paid=100, platform_rate_bps=-1, creator_rate_bps=0, fulfillment_rate_bps=0)


@st.composite
def rates(draw: st.DrawFn) -> tuple[int, int, int]:
    platform = draw(st.integers(0, 10_000))
    creator = draw(st.integers(0, 10_000 - platform))
    fulfillment = draw(st.integers(0, 10_000 - platform - creator))
    return platform, creator, fulfillment


@given(paid=st.integers(0, 10**15), rate_triple=rates())
def test_split_line_sums_to_paid(paid: int, rate_triple: tuple[int, int, int]) -> None:
    platform_rate, creator_rate, fulfillment_rate = rate_triple
    split = split_line(
        paid=paid,
        platform_rate_bps=platform_rate,
        creator_rate_bps=creator_rate,
        fulfillment_rate_bps=fulfillment_rate,
    )
    shares = (split.platform_commission, split.creator_commission, split.fulfillment_fee)
    assert split.paid == paid
    assert sum(shares) + split.brand_net == paid
    assert split.brand_net >= 0
    half_even = [bps_share(paid, rate) for rate in rate_triple]
    if sum(half_even) <= paid:
        assert list(shares) == half_even  # the normal case: exactly the half-even shares
    else:
        assert sum(half_even) == paid + 1 and sum(shares) == paid
    for share, rate in zip(shares, rate_triple, strict=True):
        assert share >= 0
        assert abs(share * 10_000 - paid * rate) < 10_000  # within one minor unit of exact


# --- refunds -----------------------------------------------------------------------------------


def test_reverse_in_proportion_example() -> None:
    remaining = {"platform_commission": 200, "creator_commission": 300, "brand_net": 1499}
    reversal = reverse_in_proportion(remaining=remaining, amount=1000)
    assert list(reversal) == list(remaining)  # key order kept
    assert sum(reversal.values()) == 1000
    assert reversal == {"platform_commission": 100, "creator_commission": 150, "brand_net": 750}
    assert reverse_in_proportion(remaining=remaining, amount=1999) == remaining
    assert reverse_in_proportion(remaining=remaining, amount=0) == dict.fromkeys(remaining, 0)


def test_reverse_in_proportion_errors() -> None:
    with pytest.raises(ValueError):
        reverse_in_proportion(remaining={"brand_net": 10}, amount=11)
    with pytest.raises(ValueError):
        reverse_in_proportion(remaining={"brand_net": 10}, amount=-1)
    with pytest.raises(ValueError):
        reverse_in_proportion(remaining={"brand_net": -1, "platform_commission": 5}, amount=1)
    assert reverse_in_proportion(remaining={}, amount=0) == {}


@given(paid=st.integers(0, 10**9), rate_triple=rates(), data=st.data())
def test_partial_refunds_reverse_exactly_what_was_posted(
    paid: int, rate_triple: tuple[int, int, int], data: st.DataObject
) -> None:
    split = split_line(
        paid=paid,
        platform_rate_bps=rate_triple[0],
        creator_rate_bps=rate_triple[1],
        fulfillment_rate_bps=rate_triple[2],
    )
    posted = {key: getattr(split, key) for key in SHARE_KEYS}
    # Cut [0, paid] at random points: the refunds are the pieces (some may be zero).
    cuts = sorted(data.draw(st.lists(st.integers(0, paid), max_size=8)))
    refunds = [b - a for a, b in zip([0, *cuts], [*cuts, paid], strict=True)]

    remaining = dict(posted)
    reversed_total = dict.fromkeys(SHARE_KEYS, 0)
    for refund in refunds:
        reversal = reverse_in_proportion(remaining=remaining, amount=refund)
        assert list(reversal) == list(SHARE_KEYS)
        assert sum(reversal.values()) == refund
        for key, value in reversal.items():
            assert 0 <= value <= remaining[key]
            remaining[key] -= value
            reversed_total[key] += value
            assert remaining[key] >= 0
    assert reversed_total == posted
    assert all(value == 0 for value in remaining.values())


# --- spread_fixed ------------------------------------------------------------------------------


def test_spread_fixed_examples() -> None:
    assert spread_fixed(amount=100, weights=[1999, 999, 2]) == [67, 33, 0]
    assert spread_fixed(amount=0, weights=[10, 20]) == [0, 0]
    assert spread_fixed(amount=5, weights=[0, 10]) == [0, 5]
    with pytest.raises(ValueError):
        spread_fixed(amount=5, weights=[0, 0])


@given(
    amount=st.integers(0, 10**6),
    weights=st.lists(st.integers(0, 10**7), min_size=1, max_size=20).filter(any),
)
def test_spread_fixed_sums_exactly(amount: int, weights: list[int]) -> None:
    parts = spread_fixed(amount=amount, weights=weights)
    assert sum(parts) == amount
    assert all(part == 0 for part, weight in zip(parts, weights, strict=True) if weight == 0)
    if amount <= sum(weights):
        assert all(part <= weight for part, weight in zip(parts, weights, strict=True))
