"""``mqtt://user:pass@host:port`` as the pieces paho-mqtt wants.

>>> BrokerAddress.parse("mqtt://dev:secret@10.0.0.5:1884")
BrokerAddress(host='10.0.0.5', port=1884, username='dev', password='secret')
>>> BrokerAddress.parse("mqtt://localhost").port
1883
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlparse


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        u = urlparse(url)
        if u.scheme not in ("mqtt", "tcp") or not u.hostname:
            raise ValueError(f"not an mqtt:// URL: {url!r}")
        return cls(
            host=u.hostname,
            port=u.port or 1883,
            username=unquote(u.username) if u.username else None,
            password=unquote(u.password) if u.password else None,
        )

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"
