"""Following a provider's content redirect without letting it point muxweb at internal addresses.

A relay may answer `/content` with a redirect to a signed link on a storage host. muxweb follows
such a redirect itself, one hop at a time, and only:

- to `https`, or to the provider's own origin (scheme, host and port of MUXWEB_API_BASE);
- to a host whose every address is public, after DNS resolution, unless the address falls in a
  network that MUXWEB_REDIRECT_ALLOWED_NETWORKS names (on-premises storage; plain HTTP is then
  allowed too, since such storage is often served that way). Loopback, private, link-local and
  unique-local addresses are refused by default, even when the provider itself is on one;
- never with the API key.

The address is checked twice: before connecting (so an open and a closed internal port give the
same refusal, and nothing is sent) and on the connected socket itself (so a name that resolves to
a public address at the check and to an internal one at the connect gets nowhere).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ALLOWED_NETWORKS_SETTING = "MUXWEB_REDIRECT_ALLOWED_NETWORKS"


class RedirectRefused(Exception):
    """A redirect target muxweb does not follow; the message says why (never what it answered)."""


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _plain(address: IPAddress) -> IPAddress:
    # ::ffff:127.0.0.1 is 127.0.0.1 to the kernel, whatever ipaddress says of the IPv6 form.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def allowed_address(address: IPAddress, allowed: list[IPNetwork]) -> bool:
    address = _plain(address)
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


def check_target(url: str, *, provider_url: str, allowed: list[IPNetwork]) -> None:
    """Raise RedirectRefused unless muxweb may follow a redirect to `url`."""
    scheme, host, port = origin(url)
    if scheme not in ("http", "https") or not host:
        raise RedirectRefused(
            "the provider redirected the download to an address that is not a web link"
        )
    addresses = resolve(host, port)
    inside_allowed = bool(allowed) and all(
        any(_plain(a) in network for network in allowed) for a in addresses
    )
    if not all(allowed_address(a, allowed) for a in addresses):
        raise RedirectRefused(
            "the provider redirected the download to a private or local address, which is not "
            f"followed; list its network in {ALLOWED_NETWORKS_SETTING} to allow on-premises storage"
        )
    if scheme != "https" and origin(url) != origin(provider_url) and not inside_allowed:
        raise RedirectRefused(
            "the provider redirected the download to a plain-HTTP address on another host, "
            "which is not followed"
        )


def resolve(host: str, port: int | None) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise RedirectRefused(
            "the download link the provider redirected to could not be resolved"
        ) from None
    addresses = []
    for info in infos:
        try:
            addresses.append(ipaddress.ip_address(info[4][0].split("%", 1)[0]))
        except ValueError:
            continue
    if not addresses:
        raise RedirectRefused("the download link the provider redirected to could not be resolved")
    return addresses


class _CheckedPeer:
    """Connections that refuse to talk once connected to an address the check would refuse."""

    allowed_networks: list[IPNetwork] = []

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        try:
            peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
        except (OSError, ValueError):
            sock.close()
            raise RedirectRefused(
                "the download link the provider redirected to could not be checked"
            ) from None
        if not allowed_address(peer, self.allowed_networks):
            sock.close()
            raise RedirectRefused(
                "the provider redirected the download to a private or local address, which is "
                f"not followed; list its network in {ALLOWED_NETWORKS_SETTING} to allow "
                "on-premises storage"
            )
        return sock


class CheckedAdapter(HTTPAdapter):
    """An adapter whose connections check their peer's address (see _CheckedPeer)."""

    def __init__(self, allowed_networks: list[IPNetwork], **kwargs) -> None:
        self.allowed_networks = allowed_networks
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        networks = self.allowed_networks

        class CheckedHTTPConnection(_CheckedPeer, HTTPConnection):
            allowed_networks = networks

        class CheckedHTTPSConnection(_CheckedPeer, HTTPSConnection):
            allowed_networks = networks

        class CheckedHTTPPool(HTTPConnectionPool):
            ConnectionCls = CheckedHTTPConnection

        class CheckedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = CheckedHTTPSConnection

        self.poolmanager.pool_classes_by_scheme = {
            "http": CheckedHTTPPool,
            "https": CheckedHTTPSPool,
        }


def checked_session(allowed_networks: list[IPNetwork]) -> requests.Session:
    """A session for redirect targets: no key, no environment proxies, every peer checked."""
    session = requests.Session()
    # A proxy from the environment would make the proxy the peer, hiding the real target.
    session.trust_env = False
    adapter = CheckedAdapter(allowed_networks, pool_connections=4, pool_maxsize=16)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
