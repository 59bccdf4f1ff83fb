"""docs/configuration.md is generated from booth/config.py's own descriptions: the two stay in
step, and no setting goes undescribed."""

from __future__ import annotations

from pathlib import Path

from booth.config import ENVIRONMENT, reference_markdown, settings

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_every_setting_has_a_description():
    undescribed = [name for name, _, f in settings() if not f.metadata["doc"].strip()]
    assert not undescribed, f"give these settings a doc= in booth/config.py: {undescribed}"
    assert all(doc.strip() for doc in ENVIRONMENT.values())


def test_the_reference_is_what_config_py_generates():
    assert REFERENCE.read_text(encoding="utf-8") == reference_markdown(), (
        "docs/configuration.md is out of date; regenerate it with "
        "`python -m booth.config > docs/configuration.md`")


def test_the_reference_names_every_setting_and_variable():
    text = reference_markdown()
    for name, _, _ in settings():
        assert f"| `{name.rpartition('.')[2]}` |" in text, name
    assert all(f"| `{var}` |" in text for var in ENVIRONMENT)
