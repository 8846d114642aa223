"""The RabbitMQ objects: one direct exchange, one durable queue per partition.

Each queue is declared with ``x-single-active-consumer``: every worker subscribes to
the partitions it may serve, RabbitMQ delivers a queue to exactly one of them (the
first registered) in order, and when that consumer's connection dies it hands the
queue, with the unacknowledged messages, to the next one waiting.  No plugin, no
coordination code of ours.
"""

from __future__ import annotations

import contextlib

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from cluster.partitioning import exchange_name, queue_name

QUEUE_ARGUMENTS = {"x-single-active-consumer": True, "x-queue-type": "classic"}


def connect(
    amqp_url: str, *, heartbeat: int = 20, name: str | None = None
) -> pika.BlockingConnection:
    """``name`` shows in ``rabbitmqctl list_connections client_properties``."""
    params = pika.URLParameters(amqp_url)
    params.heartbeat = heartbeat
    if name:
        params.client_properties = {"connection_name": name}
    params.blocked_connection_timeout = 60
    params.connection_attempts = 3
    params.retry_delay = 1
    return pika.BlockingConnection(params)


def declare(
    channel: BlockingChannel, prefix: str, partitions: int, queue_type: str = "classic"
) -> None:
    """Idempotent: every bridge and worker declares the same objects at start.

    ``queue_type`` "quorum" replicates each partition over a RabbitMQ cluster's nodes
    (Raft), for a deployment whose broker must survive losing a node.
    """
    exchange = exchange_name(prefix)
    channel.exchange_declare(exchange, exchange_type="direct", durable=True)
    arguments = {**QUEUE_ARGUMENTS, "x-queue-type": queue_type}
    for n in range(partitions):
        name = queue_name(prefix, n)
        channel.queue_declare(name, durable=True, arguments=arguments)
        channel.queue_bind(name, exchange, routing_key=name)


def delete(amqp_url: str, prefix: str, partitions: int) -> None:
    """Remove the exchange and queues (tests and benches clean up after themselves)."""
    with contextlib.closing(connect(amqp_url)) as conn:
        channel = conn.channel()
        for n in range(partitions):
            channel.queue_delete(queue_name(prefix, n))
        channel.exchange_delete(exchange_name(prefix))


def depth(amqp_url: str, prefix: str, partitions: int) -> int:
    """Messages waiting or unacknowledged over all partitions' queues."""
    total = 0
    with contextlib.closing(connect(amqp_url)) as conn:
        channel = conn.channel()
        for n in range(partitions):
            ok = channel.queue_declare(
                queue_name(prefix, n), durable=True, arguments=QUEUE_ARGUMENTS, passive=True
            )
            total += ok.method.message_count
    return total
