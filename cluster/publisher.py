"""Raw device messages into their partitions' queues, with publisher confirms.

``publish`` returns only when RabbitMQ has taken responsibility for every message
(persistent, confirmed), so the bridge may then acknowledge them to the MQTT broker.
One AMQP message carries all of a batch's messages of one partition, so a confirm
round trip is paid per partition per batch, not per reading.
"""

from __future__ import annotations

import contextlib

import pika

from cluster import topology
from cluster.envelope import Raw, pack
from cluster.partitioning import exchange_name, partition_of, queue_name
from protocol.topics import parse_topic

PERSISTENT = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent)


def partition_for_topic(topic: str, partitions: int) -> int:
    """A device's partition; a topic that names no device still goes somewhere (to be
    quarantined by that partition's worker), chosen by the whole topic."""
    parsed = parse_topic(topic)
    return partition_of(parsed[0] if parsed else topic, partitions)


class PartitionPublisher:
    def __init__(
        self, amqp_url: str, prefix: str, partitions: int, queue_type: str = "classic"
    ) -> None:
        self.amqp_url = amqp_url
        self.queue_type = queue_type
        self.prefix = prefix
        self.partitions = partitions
        self._conn: pika.BlockingConnection | None = None
        self._channel = None
        self.published_messages = 0

    def open(self) -> None:
        self._conn = topology.connect(self.amqp_url)
        self._channel = self._conn.channel()
        topology.declare(self._channel, self.prefix, self.partitions, self.queue_type)
        self._channel.confirm_delivery()

    def publish(self, messages: list[Raw]) -> None:
        """Route, publish and wait for the confirms.  Raises on a lost connection
        (pika.exceptions.AMQPError): the caller reconnects and publishes again."""
        if self._channel is None:
            self.open()
        groups: dict[int, list[Raw]] = {}
        for m in messages:
            groups.setdefault(partition_for_topic(m[0], self.partitions), []).append(m)
        exchange = exchange_name(self.prefix)
        for n, group in groups.items():
            assert self._channel is not None
            self._channel.basic_publish(
                exchange,
                queue_name(self.prefix, n),
                pack(group),
                properties=PERSISTENT,
                mandatory=True,
            )
        self.published_messages += len(messages)

    def pump(self, seconds: float = 0.0) -> None:
        """Serve heartbeats while idle."""
        if self._conn is not None:
            self._conn.process_data_events(time_limit=seconds)

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = self._channel = None
