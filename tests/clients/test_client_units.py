"""Pieces of the client that need no service: amounts and Retry-After."""

from decimal import Decimal

import pytest
import requests

from clients.api import error_from_response, format_amount, retry_after_seconds


def _response(status: int, body: bytes = b"", **headers: str) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers)
    return response


def test_decimal_int_and_string_amounts_become_decimal_strings():
    assert format_amount(Decimal("19.90")) == "19.90"
    assert format_amount(Decimal("1E+3")) == "1000"
    assert format_amount(1999) == "1999"
    assert format_amount("0.10") == "0.10"


@pytest.mark.parametrize("value", [19.99, True, Decimal("NaN"), None])
def test_floats_and_non_amounts_are_refused(value):
    with pytest.raises((TypeError, ValueError)):
        format_amount(value)


def test_retry_after_in_seconds_or_as_an_http_date():
    assert retry_after_seconds(_response(429, **{"Retry-After": "3"})) == 3
    assert (
        retry_after_seconds(_response(429, **{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0
    )
    assert retry_after_seconds(_response(429)) is None
    assert retry_after_seconds(_response(429, **{"Retry-After": "soon"})) is None


def test_an_error_body_that_is_not_the_contracts_still_gives_a_typed_error():
    error = error_from_response(_response(502, b"<html>upstream died</html>"))

    assert error.status == 502
    assert error.type == "server_error"
    assert error.code == "http_502"
