"""Stage settings: every stage in config.json is valid; errors name the setting."""

from __future__ import annotations

import pytest

from chalicelib.settings import SettingsError, load
from tools.local_stack import stage_environment


@pytest.mark.parametrize("stage", ["local", "dev", "prod"])
def test_every_configured_stage_is_valid(stage: str) -> None:
    settings = load(stage_environment(stage))
    assert settings.stage == stage
    assert settings.verification_required is True


def test_local_stage_allows_the_local_page_origin() -> None:
    settings = load(stage_environment("local"))
    assert "http://127.0.0.1:8080" in settings.allowed_origins
    assert settings.outbox_dir == "outbox"


def test_no_secret_values_in_config() -> None:
    for stage in ("local", "dev", "prod"):
        env = stage_environment(stage)
        assert not any("SECRET" in key and "PARAM" not in key for key in env)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SENDER_EMAIL": ""}, "SENDER_EMAIL"),
        ({"ALLOWED_ORIGINS": "https://ok.example,not a url"}, "ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": "https://ok.example/path"}, "ALLOWED_ORIGINS"),
        ({"VERIFY_DAYS": "zero"}, "VERIFY_DAYS"),
        ({"API_BASE_URL": "ftp://x"}, "API_BASE_URL"),
        ({"LETTER_LANGUAGE": "de"}, "LETTER_LANGUAGE"),
    ],
)
def test_bad_settings_fail_naming_the_setting(change: dict[str, str], named: str) -> None:
    env = {**stage_environment("prod"), **change}
    with pytest.raises(SettingsError, match=named):
        load(env)


def test_missing_sender_is_named() -> None:
    env = stage_environment("prod")
    del env["SENDER_EMAIL"]
    with pytest.raises(SettingsError, match="SENDER_EMAIL"):
        load(env)


def test_origins_are_normalised() -> None:
    env = {
        **stage_environment("prod"),
        "ALLOWED_ORIGINS": " https://a.example/ , https://b.example",
    }
    assert load(env).allowed_origins == ("https://a.example", "https://b.example")
