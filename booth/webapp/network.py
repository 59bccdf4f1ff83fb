"""The address phones use to reach the download server."""

from __future__ import annotations

import ipaddress
import socket

import psutil


def lan_addresses() -> list[str]:
    """IPv4 addresses of the interfaces that are up, private ones first, no loopback.

    Read from the interfaces themselves: nothing is sent on the network to find them.
    """
    stats = psutil.net_if_stats()
    found = []
    for name, addrs in psutil.net_if_addrs().items():
        if name in stats and not stats[name].isup:
            continue
        for addr in addrs:
            if addr.family != socket.AF_INET:
                continue
            ip = ipaddress.ip_address(addr.address)
            if not (ip.is_loopback or ip.is_link_local):
                found.append(ip)
    found.sort(key=lambda ip: (not ip.is_private, str(ip)))
    return [str(ip) for ip in found]


_EVERY = {"", "0.0.0.0", "::"}


def public_base_url(configured: str, host: str, port: int) -> tuple[str, str | None]:
    """(base URL, warning or None). A configured URL wins; else the address the server
    listens on, or the first LAN address when it listens on every network."""
    if configured:
        return configured.rstrip("/"), None
    if host not in _EVERY:  # the QR code must not name an address nobody listens on
        url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        if host == "localhost" or host.startswith("127.") or host == "::1":
            return url, (f"listening on {host} only, so phones cannot open the QR links; "
                         "use --host 0.0.0.0 or set [server] public_url in the config")
        return url, None
    addresses = lan_addresses()
    if addresses:
        return f"http://{addresses[0]}:{port}", None
    return (f"http://127.0.0.1:{port}",
            "only the loopback address is known, so phones cannot open the QR links; "
            "connect to the venue network or set [server] public_url in the config")
