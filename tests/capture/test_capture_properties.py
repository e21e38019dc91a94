"""Property-based: no generated input makes capture write half a row or break a transaction.

For record(), record_many() and recs_import, whatever the values (text with
NUL characters and surrogates, huge and fractional numbers, odd types,
malformed files): the call either writes what it says or raises ValueError
(CommandError for the command) having written nothing, and the caller's
transaction stays usable — on PostgreSQL a statement that failed inside the
database would make every later query of the transaction fail.
"""

from __future__ import annotations

import contextlib
import datetime
import math

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import django_recs
from django_recs.capture.importing import InvalidRows
from django_recs.models import Interaction
from tests.testapp.models import Gadget, NotAnItem, Product

pytestmark = pytest.mark.django_db

PROPERTIES = settings(max_examples=80, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture,
                                             HealthCheck.too_slow])


@pytest.fixture
def world():
    """Saved and unsaved users and items the strategies pick from by name."""
    return {
        "alice": User.objects.create_user("alice"),
        "product": Product.objects.create(name="Teapot"),
        "gadget": Gadget.objects.create(name="Kettle"),
        "not an item": NotAnItem.objects.create(name="x"),
        "unsaved user": User(username="ghost"),
        "unsaved product": Product(name="draft"),
        "anonymous": AnonymousUser(),
    }


# -- strategies --------------------------------------------------------------------------------

#: Text as it comes in: any code point, surrogates and NUL included.
any_text = st.text(st.characters(codec=None, categories=None), max_size=60)
long_text = st.text(alphabet="abc", min_size=38, max_size=45)
#: The values the issue found, drawn as often as everything else together.
EDGE_NUMBERS = [1e39, 3e38, 1e308, 1e6, 1_000_001.0, 10**400, -(10**400), -1, 0, 2.7, 1.9,
                True, float("nan"), float("inf"), 2**63, -(2**63) - 1]
EDGE_TEXT = ["a\x00b", "\ud800", "k" * 41, "m" * 40, "", " ", "1e39", "٣"]
numbers = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**420), max_value=10**420),
    st.decimals(allow_nan=True, allow_infinity=True),
)
texts = st.one_of(st.sampled_from(EDGE_TEXT), any_text)
scalars = st.one_of(st.none(), texts, numbers, st.binary(max_size=8),
                    st.lists(st.integers(), max_size=2))
timestamps = st.one_of(
    st.sampled_from([datetime.datetime.min, datetime.datetime.max, "yesterday"]),
    st.none(), st.datetimes(), st.datetimes(timezones=st.timezones()), texts, numbers,
)
session_keys = st.one_of(st.sampled_from(EDGE_TEXT), st.none(), any_text, long_text, numbers)
events = st.one_of(st.sampled_from(["view", "cart", "purchase", "rating", "wishlist"]),
                   texts, numbers, st.none())
user_names = st.sampled_from(["alice", "unsaved user", "anonymous", "product"])
item_names = st.sampled_from(["product", "gadget", "not an item", "unsaved product"])

#: Per argument: values that are fine, and values from anywhere. An example
#: takes one or two arguments from anywhere and the others fine, so that the
#: bad value is what the call meets (an example with five bad values is
#: refused for the first).
FINE = {
    "user": st.sampled_from(["alice", "alice", None]),
    "item": st.sampled_from(["product", "gadget"]),
    "event": st.sampled_from(["view", "cart", "purchase"]),
    "weight": st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),
    "session_key": st.sampled_from(["good-key-1234", "another-key-5678"]),
    "timestamp": st.one_of(st.none(), st.datetimes(
        min_value=datetime.datetime(2000, 1, 1), max_value=datetime.datetime(2030, 1, 1))),
}
ANY = {
    "user": st.one_of(user_names, scalars),
    "item": st.one_of(item_names, scalars),
    "event": events,
    "weight": st.one_of(numbers, st.none(), texts),
    "session_key": session_keys,
    "timestamp": timestamps,
}


@st.composite
def arguments(draw) -> dict:
    """Values for every argument of record(): one or two from anywhere, the others fine."""
    wild = draw(st.sets(st.sampled_from(sorted(ANY)), min_size=1, max_size=2))
    return {name: draw(ANY[name] if name in wild else FINE[name]) for name in FINE}


def _value(world, value):
    """A strategy's value, with names of the world's objects replaced by the objects."""
    return world.get(value, value) if isinstance(value, str) else value


def _usable() -> int:
    """The number of interactions, read inside the caller's transaction (it must work)."""
    return Interaction.objects.count()


# -- record() ------------------------------------------------------------------------------------


@PROPERTIES
@given(values=arguments())
def test_record_writes_one_row_or_raises_value_error_and_writes_nothing(world, values):
    user, item = _value(world, values["user"]), _value(world, values["item"])
    with transaction.atomic():
        before = _usable()
        try:
            row = django_recs.record(user, item, values["event"], weight=values["weight"],
                                     session_key=values["session_key"],
                                     timestamp=values["timestamp"])
        except ValueError:
            assert _usable() == before
            return
        assert _usable() == before + (row is not None)
        stored = Interaction.objects.get(pk=row.pk)
        assert math.isfinite(stored.weight) and 0 <= stored.weight <= 1e6
        assert "\x00" not in stored.session_key and len(stored.session_key) <= 40


# -- record_many() ---------------------------------------------------------------------------------

ORDER = ("user", "item", "event", "weight", "timestamp", "session_key")
as_tuples = arguments().map(lambda values: tuple(values[name] for name in ORDER))
as_dicts = arguments().map(lambda values: {name: value for name, value in values.items()
                                           if value is not None or name == "item"})
malformed = st.one_of(scalars, st.fixed_dictionaries({"item": item_names, "colour": texts}))
#: Mostly rows of interactions (one or two values from anywhere), some that are none.
rows = st.lists(st.one_of(as_tuples, as_dicts, as_tuples, malformed), max_size=5)


@PROPERTIES
@given(batch=rows, skip_invalid=st.booleans())
def test_record_many_writes_the_valid_rows_or_nothing(world, batch, skip_invalid):
    resolved = []
    for row in batch:
        if isinstance(row, tuple):
            row = (_value(world, row[0]), _value(world, row[1]), *row[2:])
        elif isinstance(row, dict):
            row = {key: _value(world, value) if key in ("user", "item") else value
                   for key, value in row.items()}
        resolved.append(row)
    with transaction.atomic():
        before = _usable()
        try:
            written = django_recs.record_many(resolved, skip_invalid=skip_invalid)
        except InvalidRows:
            assert not skip_invalid  # skipping, a bad row is reported and skipped
            assert _usable() == before
            return
        assert 0 <= written <= len(resolved)
        assert _usable() == before + written


# -- recs_import FILE.csv ---------------------------------------------------------------------------

csv_cells = st.one_of(
    st.sampled_from(["", "view", "purchase", "1", "2.5", "-1", "1e39", "nan", "inf",
                     "2011-12-09 12:50:00", "testapp.product:1", "testapp.gadget:zz", "user",
                     "item", "weight", '"quoted, cell"', "9" * 25, "a\x00b"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12),
)
csv_lines = st.lists(st.lists(csv_cells, min_size=1, max_size=7).map(",".join), max_size=6)
headers = st.sampled_from(["", "user,item,event,weight,timestamp,session_key", "user,item",
                           "user,event,weight", "item,item", "user,product,event", "ITEM,User"])


@PROPERTIES
@given(header=headers, lines=csv_lines, skip_invalid=st.booleans(), tail=st.binary(max_size=6))
def test_recs_import_writes_or_stops_with_a_command_error_naming_a_line(
        world, tmp_path_factory, header, lines, skip_invalid, tail):
    product = world["product"]
    body = "\n".join([header] + [line.replace("1", str(product.pk)) for line in lines])
    path = tmp_path_factory.mktemp("csv") / "interactions.csv"
    path.write_bytes(body.encode("utf-8", "surrogatepass") + b"\n" + tail)
    args = [str(path), "--skip-invalid"] if skip_invalid else [str(path)]
    with transaction.atomic():
        before = _usable()
        try:
            call_command("recs_import", *args, verbosity=0)
        except CommandError as error:
            assert _usable() == before
            assert "line" in str(error) or "invalid row" in str(error), str(error)
            return
        assert _usable() >= before


@PROPERTIES
@given(user=st.one_of(st.integers(min_value=-(10**30), max_value=10**30), any_text,
                      st.floats(), st.none(), st.booleans()))
def test_forget_user_takes_a_user_id_or_raises_value_error(world, user):
    with transaction.atomic(), contextlib.suppress(ValueError):
        django_recs.forget_user(user)
    _usable()

