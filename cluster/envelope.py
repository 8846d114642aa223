"""What travels through RabbitMQ: a batch of raw device messages of one partition.

The bridge does no decoding (it stays a thin, fast MQTT terminator): each entry is
the MQTT topic, the payload bytes as received and the bridge's receive time, and
the worker runs the same assembly as the single-process ingest on them.  msgpack
via msgspec: one C call each way.

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
>>> [(m.topic, m.payload, m.received_at) for m in unpack(pack([("a/b", b"{}", t)]))]
[('a/b', b'{}', datetime.datetime(2026, 12, 4, 7, 0, tzinfo=datetime.timezone.utc))]
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from ingest.batch import Inbound

Raw = tuple[str, bytes, datetime]
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[tuple[str, bytes, int]])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def pack(messages: list[Raw]) -> bytes:
    return _ENCODER.encode(
        [(topic, payload, _micros(received)) for topic, payload, received in messages]
    )


def unpack(body: bytes) -> list[Inbound]:
    return [
        Inbound(topic, payload, datetime.fromtimestamp(us / 1e6, UTC))
        for topic, payload, us in _DECODER.decode(body)
    ]


def _micros(t: datetime) -> int:
    delta = t - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
