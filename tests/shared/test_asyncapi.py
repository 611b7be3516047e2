"""The committed event catalogue (docs/asyncapi.json) matches the contracts."""

import json
from pathlib import Path

from baoxue.asyncapi import build_document
from baoxue.contracts import all_contracts

DOC = Path(__file__).parents[2] / "docs" / "asyncapi.json"


def test_committed_asyncapi_document_is_current():
    assert json.loads(DOC.read_text(encoding="utf-8")) == build_document(), (
        "docs/asyncapi.json is stale: run `.venv/bin/baoxue asyncapi` and commit it"
    )


def test_every_contract_has_a_channel_and_no_personal_fields():
    doc = build_document()
    assert len(doc["channels"]) == len(all_contracts()) >= 20
    forbidden = {"id_number", "name", "phone", "guardian_phone", "address", "hukou_address"}
    for contract in all_contracts():
        assert not forbidden & set(contract.model_fields), contract.__name__
