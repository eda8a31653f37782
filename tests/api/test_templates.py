"""Template rendering reports failures instead of raising."""

from pathlib import Path

from xmpp_connect.sending.templates import TemplateStore


def test_builtin_template_renders() -> None:
    out = TemplateStore().render("secure-document-xmpp-notification", {"portal_link": "https://p.invalid/x"})
    assert out.ok and out.body == "A document is available for you: https://p.invalid/x"


def test_missing_variable_is_a_reported_failure() -> None:
    out = TemplateStore().render("secure-document-xmpp-notification", {})
    assert not out.ok and out.body is None and "portal_link" in (out.error or "")


def test_unknown_and_path_like_refs_fail() -> None:
    store = TemplateStore()
    assert store.render("nope", {}).error == "unknown template 'nope'"
    assert store.render("../etc/passwd", {}).error == "invalid template ref"


def test_directory_overrides_builtins(tmp_path: Path) -> None:
    (tmp_path / "reminder.txt").write_text("Custom ${summary}")
    assert TemplateStore(tmp_path).render("reminder", {"summary": "x"}).body == "Custom x"
