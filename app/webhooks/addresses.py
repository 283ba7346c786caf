"""Where a webhook may be sent: syntax at creation, addresses after DNS resolution.

Unless ``WEBHOOK_ALLOW_PRIVATE`` is set, a target whose host is or resolves to
any address that is not globally routable (loopback, private, link-local with
the cloud metadata address 169.254.169.254, carrier-grade NAT, unique-local,
multicast, reserved, unspecified; IPv4-mapped IPv6 unwrapped) is refused. The
request then goes to the address that was checked (``Pinned``), so a second DNS
answer cannot swap in an inside address between the check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedTarget(Exception):
    """A webhook URL that must not be called (SSRF protection) or cannot be."""


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: str, *, allow_private: bool) -> str:
    """``url`` if it can be a webhook target: http(s), a host, no credentials, at most
    2048 characters and, unless ``allow_private``, no literal inside address or
    ``localhost``. Raises ``RefusedTarget`` with the reason. Names are resolved only
    when sending (``pin``), since their addresses can change."""
    if len(url) > MAX_URL_LENGTH:
        raise RefusedTarget(f"longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedTarget(f"not a URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise RefusedTarget("must be an http:// or https:// URL")
    host = parts.hostname
    if not host:
        raise RefusedTarget("has no host")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("must not carry credentials (user:password@)")
    if port == 0:
        raise RefusedTarget("port 0 is not a port")
    if not allow_private:
        literal = _literal(host)
        if (literal is not None and not is_public(literal)) or host.rstrip(".").endswith(
            "localhost"
        ):
            raise RefusedTarget(f"{host} is not a public address")
    return url


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (the system resolver, off the event loop)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedTarget(f"{host} does not resolve: {exc}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Pinned:
    """A request target after the check: the URL to connect to and what to tell the server."""

    url: str
    host_header: str | None
    sni_hostname: str | None


async def pin(url: str, *, allow_private: bool) -> Pinned:
    """Resolve ``url``'s host and refuse it (``RefusedTarget``) if any of its addresses
    is not public; otherwise the URL rewritten to the first address, with the Host
    header and TLS server name of the original. With ``allow_private`` the URL is
    used as it is."""
    check_url(url, allow_private=allow_private)
    if allow_private:
        return Pinned(url, None, None)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    literal = _literal(host)
    addresses = [literal] if literal is not None else await resolve(host, port)
    refused = [str(address) for address in addresses if not is_public(address)]
    if refused or not addresses:
        raise RefusedTarget(f"{host} resolves to a non-public address ({', '.join(refused)})")
    first = addresses[0]
    if literal is not None:
        return Pinned(url, None, None)
    shown = f"[{first}]" if first.version == 6 else str(first)
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    host_header = parts.netloc.rpartition("@")[2]
    sni = host if parts.scheme == "https" else None
    return Pinned(urlunsplit(parts._replace(netloc=netloc)), host_header, sni)
