"""Which URLs the service will POST webhooks to: public https only (a guard against SSRF).

A webhook URL is checked when an endpoint is created or changed, and again before every send,
because DNS may answer differently later (DNS rebinding). The send then connects to the very
address that was checked (see ``sending``), so a second lookup cannot swap it for another.

Every address the host resolves to must be public. Loopback and private addresses, and plain
http to them, are allowed only with ``WEBHOOK_ALLOW_PRIVATE_URLS`` (local development, tests).
Link-local (cloud metadata at 169.254.169.254), multicast, reserved and unspecified addresses
are never allowed.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated (RFC 3879), still routed inside


class WebhookURLNotAllowed(ValueError):
    """The URL may not receive webhooks; the message says why, for the partner to read."""


@dataclass(frozen=True)
class CheckedURL:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _allowed_ports() -> tuple[int, ...]:
    from django.conf import settings

    return tuple(int(p) for p in getattr(settings, "WEBHOOK_ALLOWED_PORTS", (443,)))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_kind(ip: IPAddress) -> str:
    """``public``, ``local`` (loopback or private) or ``forbidden``."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return address_kind(embedded)
    if ip.is_unspecified or ip.is_multicast or ip.is_link_local or ip.is_reserved:
        return "forbidden"
    if ip.is_loopback or ip.is_private or ip in _SITE_LOCAL:
        return "local"
    if ip.is_global:
        return "public"
    return "forbidden"  # e.g. carrier-grade NAT space, neither private nor global


def check_webhook_url(
    url: str, *, allow_private: bool, allowed_ports: tuple[int, ...] | None = None
) -> CheckedURL:
    """Resolve ``url``'s host and return it with its addresses, or raise WebhookURLNotAllowed.

    The port must be one of ``allowed_ports`` (``WEBHOOK_ALLOWED_PORTS``, default 443) unless
    private URLs are allowed and every address is local: ``https://1.1.1.1:6379/`` would make
    the service talk to a Redis-like port. Messages never name the addresses the host resolved
    to: internal DNS answers are not the partner's to read.
    """
    if allowed_ports is None:
        allowed_ports = _allowed_ports()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookURLNotAllowed(f"Not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise WebhookURLNotAllowed("Webhook URLs must use https.")
    host = parts.hostname
    if not host:
        raise WebhookURLNotAllowed("The URL has no host.")
    port = port or (443 if scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise WebhookURLNotAllowed(f"The host {host} does not resolve.") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookURLNotAllowed(f"The host {host} does not resolve.")
    kinds = set()
    for address in addresses:
        kind = address_kind(ipaddress.ip_address(address.split("%", 1)[0]))
        if kind == "forbidden" or (kind == "local" and not allow_private):
            raise WebhookURLNotAllowed(
                f"The host {host} resolves to an address that is not public."
            )
        kinds.add(kind)
    local_only = allow_private and kinds == {"local"}
    if scheme == "http" and not local_only:
        raise WebhookURLNotAllowed("Webhook URLs must use https.")
    if port not in allowed_ports and not local_only:
        ports = ", ".join(str(p) for p in allowed_ports)
        raise WebhookURLNotAllowed(f"Webhook URLs must use port {ports}.")
    return CheckedURL(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
