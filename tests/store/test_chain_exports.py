"""Export bundles built from either store (SQLite and PostgreSQL) verify offline; a change in any line, an
entry's content or a link is refused; without a signing key only a covering stored checkpoint will do."""

from __future__ import annotations

import json

import pytest
from chain_helpers import append_log
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from store_helpers import T0

from xmpp_connect.evidence.exports import ExportError, ExportRequest, build_export
from xmpp_connect.model.bundle import encode_bundle, verify_bundle
from xmpp_connect.model.checkpoint import public_key_text

KEY = Ed25519PrivateKey.generate()
PUBLIC = public_key_text(KEY)


def reencoded(text: str, change) -> str:
    """The bundle with ``change`` applied to its lines and the manifest digest recomputed (a forger)."""
    lines = [json.loads(line) for line in text.splitlines()]
    change(lines)
    manifest = {k: v for k, v in lines[0].items() if k not in ("lines", "lines_sha256", "manifest_signature")}
    return encode_bundle(manifest, lines[1:])


def test_a_message_bundle_verifies_and_forgeries_are_refused(store, tenant):
    ids = append_log(store, tenant, messages=4)
    text = build_export(store, ExportRequest(tenant, message_id="m1"), now=T0, key=KEY)
    report = verify_bundle(text, PUBLIC)
    assert report.ok, report.problem
    assert (report.entries, report.links) == (2, len(ids) - 4)  # m1's two, then m2 and m3 as hashes

    def change_entry(lines):
        lines[1]["row"]["subclass"] = "success.acknowledged_by_client"

    def drop_link(lines):
        del lines[3]

    def swap_entries(lines):
        lines[1], lines[2] = lines[2], lines[1]

    for change, kind in ((change_entry, "changed"), (drop_link, None), (swap_entries, "reordered")):
        refused = verify_bundle(reencoded(text, change), PUBLIC)
        assert not refused.ok, change.__name__
        if kind:
            assert refused.failure is not None and refused.failure["kind"] == kind, refused.problem
    claimed = verify_bundle(text.replace('"message_id":"m1"}', '"message_id":"m9"}', 1), PUBLIC)
    assert not claimed.ok and "manifest" in str(claimed.problem), "the signed manifest states the selection"

    def claim_m9(lines):
        lines[0]["selection"] = {"message_id": "m9"}

    outside = verify_bundle(reencoded(text, claim_m9), PUBLIC)
    assert not outside.ok and "outside the stated selection" in str(outside.problem)


def test_an_anonymized_participant_bundle_holds_no_jid(store, tenant):
    append_log(store, tenant, messages=4)
    text = build_export(
        store, ExportRequest(tenant, participant_id="participant-1", anonymize=True), now=T0, key=KEY
    )
    assert "example.net" not in text and "participant-1" not in text
    report = verify_bundle(text, PUBLIC)
    assert report.ok and report.anonymized == report.entries == 4


def test_without_a_key_a_stored_checkpoint_must_cover_the_selection(store, tenant):
    append_log(store, tenant, messages=2)
    with pytest.raises(ExportError, match="signing_key"):
        build_export(store, ExportRequest(tenant, case_id="case-1"), now=T0, key=None)
    store.create_checkpoint(tenant, KEY, T0)
    text = build_export(store, ExportRequest(tenant, case_id="case-1"), now=T0, key=None)
    assert verify_bundle(text, PUBLIC).ok
    assert not verify_bundle(text).ok, "no key given and none in the bundle"
