"""JID helpers: splitting, bare-JID comparison and RFC 7622 syntax checks before sending."""

import pytest

from xmpp_connect.xmpp.jids import bare, is_valid_jid, normalize, resource, split_jid


@pytest.mark.parametrize(
    ("jid", "parts"),
    [
        ("bob@localhost/phone", ("bob", "localhost", "phone")),
        ("bob@localhost", ("bob", "localhost", None)),
        ("localhost", (None, "localhost", None)),
        ("localhost/res", (None, "localhost", "res")),
        ("a/b@c", (None, "a", "b@c")),
        ("bob@localhost/with/slash", ("bob", "localhost", "with/slash")),
    ],
)
def test_split_follows_rfc7622_order(jid: str, parts: tuple) -> None:
    assert split_jid(jid) == parts


def test_bare_lowercases_account_and_keeps_resource_out() -> None:
    assert bare("Bob@LocalHost./Phone") == "bob@localhost"
    assert bare("conference.localhost") == "conference.localhost"
    assert bare("bad@@localhost") == "bad@@localhost"


def test_resource_and_normalize() -> None:
    assert resource("bob@localhost/Phone") == "Phone"
    assert resource("bob@localhost") is None
    assert normalize("Bob@Localhost/Phone") == "bob@localhost/Phone"


@pytest.mark.parametrize(
    "jid",
    [
        "bob@localhost",
        "bob@localhost/phone 2",
        "ops@conference.localhost/Nick Name",
        "localhost",
        "pubsub.localhost",
        "user@127.0.0.1",
        "user@[::1]/r",
        "jürgen@münchen.example",
        "bob@localhost.",
        "a@" + "b" * 63 + ".example",
        "x" * 1023 + "@localhost",
    ],
)
def test_valid_jids(jid: str) -> None:
    assert is_valid_jid(jid)


@pytest.mark.parametrize(
    "jid",
    [
        "",
        "@localhost",
        "bob@",
        "bob@localhost/",
        "bad@@localhost",
        "bo b@localhost",
        'bo"b@localhost',
        "bo&b@localhost",
        "bo'b@localhost",
        "bo:b@localhost",
        "bo<b@localhost",
        "bo>b@localhost",
        "bob@local host",
        "bob@-localhost",
        "bob@localhost-",
        "bob@local..host",
        "bob@local_host",
        "bob@[not-an-ip]",
        "bob@999.1.1.1",
        "a@" + "b" * 64 + ".example",
        "x" * 1024 + "@localhost",
        "bob@localhost/" + "r" * 1024,
        "bob\x00@localhost",
        "bob@localhost/res\x07",
    ],
)
def test_invalid_jids(jid: str) -> None:
    assert not is_valid_jid(jid)
