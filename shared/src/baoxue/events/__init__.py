"""Events between services: CloudEvents envelopes over NATS JetStream.

The path of one event: a service function calls :meth:`Outbox.add` inside its transaction
(:mod:`baoxue.events.outbox`); after commit the :class:`~baoxue.events.relay.OutboxRelay` publishes it
with ``Nats-Msg-Id`` = event id and marks it published on the PubAck; another service's
:class:`~baoxue.events.consumer.ConsumerRunner` fetches it from a durable pull consumer and applies it
in one transaction with an inbox row, so a redelivery has no second effect.
"""

from baoxue.events.envelope import Envelope, EventData, stream_name, stream_subjects
from baoxue.events.tables import EventTables, define_event_tables

__all__ = ["Envelope", "EventData", "EventTables", "define_event_tables", "stream_name", "stream_subjects"]
