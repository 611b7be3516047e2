"""The event catalogue as an AsyncAPI 3.0 document, generated from the contracts.

``baoxue asyncapi`` writes ``docs/asyncapi.json``; a test keeps the committed file in step with the
contracts, so the catalogue integrators read is the one the services actually speak.
"""

from __future__ import annotations

from typing import Any

from baoxue import __version__
from baoxue.contracts import all_contracts
from baoxue.events.envelope import SERVICES, Envelope, stream_name


def _envelope_schema(data_ref: str) -> dict[str, Any]:
    schema = Envelope.model_json_schema()
    schema["properties"]["data"] = {"$ref": data_ref}
    schema.pop("title", None)
    return schema


def build_document(namespace: str = "baoxue") -> dict[str, Any]:
    """The AsyncAPI document of every event of every service (subjects in ``namespace``)."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for contract in all_contracts():
        name = contract.__name__
        channel_id = contract.relative_subject().replace(".", "_")
        data_schema = contract.model_json_schema(ref_template="#/components/schemas/{model}")
        for def_name, definition in data_schema.pop("$defs", {}).items():
            schemas[def_name] = definition
        schemas[name] = data_schema
        messages[name] = {
            "name": contract.event_type(),
            "title": name,
            "summary": (contract.__doc__ or "").strip().splitlines()[0] if contract.__doc__ else name,
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {
                        "type": "string",
                        "description": "= envelope id (JetStream de-duplication)",
                    },
                    "traceparent": {"type": "string", "description": "W3C trace context"},
                },
            },
            "payload": _envelope_schema(f"#/components/schemas/{name}"),
        }
        channels[channel_id] = {
            "address": f"{namespace}.{contract.relative_subject()}",
            "description": f"Stream {stream_name(namespace, contract.service)}; CloudEvents type {contract.event_type()}",
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "summary": f"The {contract.service} service publishes {name} through its transactional outbox.",
            "x-publisher": contract.service,
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Baoxue (保学) events",
            "version": __version__,
            "description": (
                "Events between Baoxue's services over NATS JetStream. Each publishing service has one stream "
                f"({', '.join(stream_name(namespace, s) for s in SERVICES)}). Messages are CloudEvents 1.0 "
                "(structured JSON). Delivery is at least once; consumers apply each event once through their "
                "inbox and drop events whose `sequence` is older than what they hold. No event carries a raw "
                "ID number, name, address or phone number."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {"host": "127.0.0.1:14222", "protocol": "nats", "description": "make run"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
