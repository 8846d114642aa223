"""Committed readings as bytes, from the ingest process to the detection process.

msgspec msgpack: one C call on the ingest's side (which must stay cheap: it shares
its process with paho's network loop and the COPY writer), typed decoding on the
detection side.  The reading types are plain (untagged) structs, so each item
carries a one-byte type code and its reading is decoded by that type's decoder.

>>> from datetime import UTC, datetime
>>> from protocol.messages import Event, Vitals
>>> t = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
>>> items = [(3, Vitals("w3", 1, t, hr=71.0)), (None, Event("w9", 2, t, "sos"))]
>>> decode_batch(encode_batch(items)) == items
True
"""

from __future__ import annotations

from typing import Final

import msgspec

from protocol.messages import Event, Position, Reading, Status, Vitals

Item = tuple[int | None, Reading]
_TYPES: Final = (Vitals, Position, Event, Status)
_CODE: Final = {t: i for i, t in enumerate(_TYPES)}
_ENCODER = msgspec.msgpack.Encoder()
_FRAME = msgspec.msgpack.Decoder(list[tuple[int | None, int, msgspec.Raw]])
_READING = tuple(msgspec.msgpack.Decoder(t) for t in _TYPES)


def encode_batch(items: list[Item]) -> bytes:
    """``(elder_id, reading)`` pairs as one msgpack frame."""
    code = _CODE
    return _ENCODER.encode([(e, code[type(r)], r) for e, r in items])


def decode_batch(frame: bytes) -> list[Item]:
    """The pairs of :func:`encode_batch`, in their order."""
    dec = _READING
    return [(e, dec[c].decode(raw)) for e, c, raw in _FRAME.decode(frame)]
