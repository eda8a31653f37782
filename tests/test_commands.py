"""The §17 command table: whole-body, case/whitespace-insensitive matching and inbound text sanitizing."""

import pytest

from xmpp_connect.policy.commands import MAX_TEXT_CHARS, CommandTable, sanitize_text

TABLE = {
    "commands": [
        {"keywords": ["ACK", "OK", "CONFIRM", "YES"], "classification": "acknowledgement"},
        {"keywords": ["NO", "DECLINE"], "classification": "decline"},
        {"keywords": ["HELP"], "classification": "help"},
        {"keywords": ["STATUS"], "classification": "status"},
        {"keywords": ["STOP", "UNSUBSCRIBE"], "classification": "stop"},
    ],
    "otherwise": "free_text",
}


@pytest.fixture
def table() -> CommandTable:
    return CommandTable.from_mapping(TABLE)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("ACK", "acknowledgement"),
        ("  ack ", "acknowledgement"),
        ("Ok.", "acknowledgement"),
        ("YES!", "acknowledgement"),
        ("ｏｋ", "acknowledgement"),
        ("decline", "decline"),
        ("Help", "help"),
        ("status", "status"),
        ("Unsubscribe", "stop"),
        ("ack please", "free_text"),
        ("OK?", "free_text"),
        ("!!!", "free_text"),
        ("I will look at it", "free_text"),
        ("", "none"),
        ("  \n\t ", "none"),
        (None, "none"),
    ],
)
def test_classify(table: CommandTable, body: str | None, expected: str) -> None:
    assert table.classify(body) == expected


def test_a_frozen_table_with_tuples_works() -> None:
    entry = {"keywords": ("ACK",), "classification": "acknowledgement"}
    frozen = {"commands": (entry,), "otherwise": "free_text"}
    assert CommandTable.from_mapping(frozen).classify("ack") == "acknowledgement"


def test_multi_word_keywords_match_with_collapsed_whitespace() -> None:
    table = CommandTable.from_mapping(
        {"commands": [{"keywords": ["Not Now"], "classification": "decline"}], "otherwise": "free_text"}
    )
    assert table.classify("  not \n  NOW ") == "decline"
    assert table.classify("notnow") == "free_text"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"otherwise": "free_text"}, "'commands' must be a list"),
        ({"commands": [], "otherwise": ""}, "'otherwise'"),
        ({"commands": ["ACK"], "otherwise": "free_text"}, "not a mapping"),
        ({"commands": [{"keywords": ["ACK"]}], "otherwise": "free_text"}, "no classification"),
        ({"commands": [{"keywords": [], "classification": "help"}], "otherwise": "free_text"}, "no keywords"),
        (
            {"commands": [{"keywords": [" "], "classification": "help"}], "otherwise": "free_text"},
            "empty keyword",
        ),
        (
            {
                "commands": [
                    {"keywords": ["OK"], "classification": "acknowledgement"},
                    {"keywords": ["ok"], "classification": "decline"},
                ],
                "otherwise": "free_text",
            },
            "two classifications",
        ),
    ],
)
def test_malformed_tables_are_refused(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CommandTable.from_mapping(data)


def test_sanitize_normalizes_and_drops_controls_but_keeps_newline_and_tab() -> None:
    assert sanitize_text("ﬁne\u0000\u0007 line\r\nnext\tcol") == "fine line\nnext\tcol"


def test_sanitize_drops_invisible_format_characters(table: CommandTable) -> None:
    spoofed = "A\u200bC\u202eK"
    assert sanitize_text(spoofed) == "ACK"
    assert table.classify(sanitize_text(spoofed)) == "acknowledgement"
    assert table.classify(spoofed) == "free_text"


def test_sanitize_limits_length() -> None:
    assert len(sanitize_text("x" * (MAX_TEXT_CHARS + 10))) == MAX_TEXT_CHARS
    assert sanitize_text("abcdef", max_chars=3) == "abc"
