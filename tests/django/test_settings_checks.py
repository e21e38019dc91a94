"""Checks of the DJANGO_RECS namespace itself and of EXCLUDE_SEEN (E060-E063)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_recs.checks import check_exclude_seen, check_settings_namespace
from django_recs.conf import DEFAULTS, recs_settings


def recs(**values):
    return override_settings(DJANGO_RECS={**settings.DJANGO_RECS, **values})


def messages(check, prefix="django_recs.E"):
    return [m for m in check() if m.id.startswith(prefix)]


# --- E060 / E061: the namespace ------------------------------------------------------------


def test_a_misspelled_key_is_an_error_naming_the_closest_setting():
    with recs(EXCLUDE_SEEM=["purchase"]):
        [error] = messages(check_settings_namespace)
    assert error.id == "django_recs.E061"
    assert error.msg == ("DJANGO_RECS has the key 'EXCLUDE_SEEM', which is not a django_recs "
                         "setting: it is ignored.")
    assert error.hint.startswith("Did you mean 'EXCLUDE_SEEN'? The settings are ")
    assert "ITEM_MODELS" in error.hint


def test_a_lower_case_key_is_matched_to_its_setting():
    with recs(num_threads=2):
        [error] = messages(check_settings_namespace)
    assert error.hint.startswith("Did you mean 'NUM_THREADS'?")


def test_a_key_like_no_setting_lists_the_settings():
    with recs(COLOUR="red"):
        [error] = messages(check_settings_namespace)
    assert "'COLOUR'" in error.msg
    assert "Did you mean" not in error.hint
    assert error.hint == f"The settings are {', '.join(sorted(DEFAULTS))}."


def test_keys_are_read_from_the_defaults_when_the_check_runs(monkeypatch):
    with recs(FUTURE_SETTING=60):
        assert [m.id for m in messages(check_settings_namespace)] == ["django_recs.E061"]
        # A setting added to conf.DEFAULTS (as another part of the app may) is known.
        monkeypatch.setitem(DEFAULTS, "FUTURE_SETTING", 30)
        assert messages(check_settings_namespace) == []


def test_every_default_key_is_accepted():
    with override_settings(DJANGO_RECS=dict(DEFAULTS)):
        assert messages(check_settings_namespace) == []


@pytest.mark.parametrize("value", [["ITEM_MODELS", ["testapp.Product"]], "testapp.Product", None])
def test_a_namespace_that_is_not_a_dict_is_reported_and_the_defaults_apply(value):
    with override_settings(DJANGO_RECS=value):
        [error] = messages(check_settings_namespace)
        assert error.id == "django_recs.E060"
        assert f"got {type(value).__name__}" in error.msg
        assert error.hint.startswith("e.g. DJANGO_RECS = {")
        assert recs_settings.EXCLUDE_SEEN == ["purchase"]
        # `manage.py check` reports it instead of failing in another check.
        with pytest.raises(SystemCheckError, match="django_recs.E060"):
            call_command("check")


def test_manage_py_check_fails_on_a_misspelled_key_and_shows_the_hint():
    with recs(EXCLUDE_SEEM=["purchase"]), pytest.raises(SystemCheckError) as raised:
        call_command("check")
    output = str(raised.value)
    assert "(django_recs.E061) DJANGO_RECS has the key 'EXCLUDE_SEEM'" in output
    assert "HINT: Did you mean 'EXCLUDE_SEEN'?" in output


# --- E062 / E063: EXCLUDE_SEEN -----------------------------------------------------------------


def test_an_unknown_exclude_seen_event_is_an_error_with_a_did_you_mean():
    with recs(EXCLUDE_SEEN=["purchased"]):
        [error] = messages(check_exclude_seen)
    assert error.id == "django_recs.E063"
    assert error.msg.startswith(
        "DJANGO_RECS['EXCLUDE_SEEN'] names the event 'purchased', which is not in "
        "DJANGO_RECS['EVENTS'] (view, cart, purchase, rating, wishlist)")
    assert "recommended again" in error.msg
    assert error.hint.startswith("Did you mean 'purchase'? ")


def test_each_unknown_exclude_seen_entry_is_reported_once():
    with recs(EXCLUDE_SEEN=["purchase", "refund", 3, "cart"]):
        errors = messages(check_exclude_seen)
    assert [e.id for e in errors] == ["django_recs.E063"] * 2
    assert "'refund'" in errors[0].msg and "Did you mean" not in errors[0].hint
    assert "the event 3," in errors[1].msg


@pytest.mark.parametrize(("value", "example"), [
    ("purchase", "['purchase']"), (None, "['purchase']"), ({"purchase": True}, "['purchase']"),
])
def test_exclude_seen_that_is_not_a_list_is_an_error(value, example):
    with recs(EXCLUDE_SEEN=value):
        [error] = messages(check_exclude_seen)
    assert error.id == "django_recs.E062"
    assert error.msg == ("DJANGO_RECS['EXCLUDE_SEEN'] must be a list of event names, got "
                         f"{type(value).__name__} {value!r}.")
    assert error.hint.startswith(f'e.g. "EXCLUDE_SEEN": {example}')


@pytest.mark.parametrize("value", [[], ["purchase", "cart"], ("purchase",)])
def test_good_exclude_seen_values_pass(value):
    with recs(EXCLUDE_SEEN=value):
        assert messages(check_exclude_seen, "django_recs") == []


def test_exclude_seen_is_not_checked_against_broken_events():
    with recs(EVENTS=["purchase"], EXCLUDE_SEEN=["purchase"]):
        assert messages(check_exclude_seen) == []  # E020 reports EVENTS


def test_manage_py_check_fails_on_an_unknown_exclude_seen_event():
    with recs(EXCLUDE_SEEN=["purchased"]), pytest.raises(SystemCheckError) as raised:
        call_command("check")
    assert "(django_recs.E063)" in str(raised.value)
    assert "HINT: Did you mean 'purchase'?" in str(raised.value)
