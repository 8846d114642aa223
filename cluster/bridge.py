"""The bridge: terminates the devices' MQTT and publishes into the partition queues.

It decodes nothing (a worker does): each MQTT message goes, as received, to the
queue of its device's partition, and is acknowledged to the MQTT broker only after
RabbitMQ confirmed it (publisher confirms on persistent messages).  So a bridge
crash loses nothing: the broker redelivers from the bridge's persistent session,
and a message published twice is stored once by the worker (the readings'
``(device, seq, ts)`` identity).

Several bridges may run behind an MQTT cluster (EMQX shared subscription
``$share/bridge/eldercare/v1/#`` with the ``hash_clientid`` strategy keeps each
device on one bridge, hence its order); here one bridge holds one persistent session.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pika.exceptions
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cluster.publisher import PartitionPublisher
from eldercare.broker_address import BrokerAddress
from eldercare.settings import Settings
from protocol.topics import ROOT, parse_topic

log = logging.getLogger("eldercare.bridge")
SUBSCRIPTION = f"{ROOT}/#"


class Bridge:
    def __init__(self, settings: Settings, broker_url: str, *, mqtt_v5: bool = True) -> None:
        self.settings = settings
        self.broker = BrokerAddress.parse(broker_url)
        self.mqtt_v5 = mqtt_v5
        self.publisher = PartitionPublisher(
            settings.amqp_url,
            settings.partition_prefix,
            settings.partitions,
            settings.partition_queue_type,
        )
        self._queue: queue.SimpleQueue[tuple[str, bytes, datetime, int, int, int]] = (
            queue.SimpleQueue()
        )
        self._generation = 0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self.forwarded = 0
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cid = self.settings.bridge_client_id
        if self.mqtt_v5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5, manual_ack=True
            )
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=cid,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self._connected.clear()
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self._generation += 1
        client.subscribe(SUBSCRIPTION, qos=1)
        self._connected.set()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/cmd") and parse_topic(msg.topic.removesuffix("/cmd") + "/status"):
            client.ack(msg.mid, msg.qos)  # our own downlink commands: not input
            return
        self._queue.put(
            (msg.topic, msg.payload, datetime.now(UTC), msg.mid, msg.qos, self._generation)
        )

    def start(self, connect_timeout: float = 15.0) -> None:
        self.publisher.open()  # fail early when RabbitMQ is not there
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.ingest_session_expiry_s
        props.ReceiveMaximum = self.settings.ingest_receive_max
        if self.mqtt_v5:
            self._client.connect(
                self.broker.host,
                self.broker.port,
                keepalive=30,
                clean_start=False,
                properties=props,
            )
        else:
            self._client.connect(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(connect_timeout):
            self._client.loop_stop()
            raise RuntimeError(f"MQTT broker at {self.broker.url} did not accept the connection")
        self._thread = threading.Thread(target=self._run, name="bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._client.disconnect()
        self._client.loop_stop()
        self.publisher.close()

    def _drain(self) -> list[tuple[str, bytes, datetime, int, int, int]]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.settings.ingest_linger_ms / 1000
        while len(batch) < self.settings.ingest_batch_max:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            batch = self._drain()
            if not batch:
                try:
                    self.publisher.pump()
                except pika.exceptions.AMQPError:
                    self.publisher.close()
                continue
            while not self._stop.is_set():
                try:
                    self.publisher.publish([(t, p, r) for t, p, r, *_ in batch])
                    delay = 0.5
                    break
                except pika.exceptions.AMQPError as exc:
                    # Nothing acked to MQTT: publish the batch again once back.
                    log.warning("RabbitMQ unavailable (%r); retrying in %.1f s", exc, delay)
                    self.publisher.close()
                    self._stop.wait(delay)
                    delay = min(delay * 2, 10.0)
            else:
                return
            generation = self._generation
            for _, _, _, mid, qos, gen in batch:
                if qos > 0 and gen == generation:
                    self._client.ack(mid, qos)
            self.forwarded += len(batch)
