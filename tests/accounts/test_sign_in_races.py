"""Sign-in limits hold under parallel attempts, and for every spelling that reaches a person."""

# ruff: noqa: RUF001, RUF003 - look-alike letters are the point

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings

from console.accounts.models import Person
from console.accounts.usernames import person_for_sign_in, username_key
from console.audit.models import AuditEvent
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

THROTTLED = "Too many failed sign-ins"
NOT_RIGHT = "not right"


def sign_in(username: str, password: str = PASSWORD, address: str = "10.0.0.1") -> str:
    response = Client().post("/sign-in/", {"username": username, "password": password}, REMOTE_ADDR=address)
    return response.content.decode() if response.status_code == 200 else f"redirect:{response['Location']}"


def in_parallel[T](count: int, attempt: Callable[[int], T]) -> list[T]:
    """``attempt(0…count-1)``, each on a thread of its own, all let go at the same moment."""
    start = threading.Barrier(count)

    def run(number: int) -> T:
        start.wait()
        try:
            return attempt(number)
        finally:
            connection.close()  # each thread's own connection

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The user names whose password was checked; each check takes a while, as a real one does."""
    names: list[str] = []
    lock = threading.Lock()
    original = Person.check_password

    def slow_check(person: Person, raw_password: str | None) -> bool:
        with lock:
            names.append(person.username)
        time.sleep(0.05)  # long enough for every other thread to arrive meanwhile
        return original(person, raw_password)

    monkeypatch.setattr(Person, "check_password", slow_check)
    return names


def failures_checked() -> int:
    """Failed sign-ins whose password was checked (a throttled one is recorded as throttled)."""
    checked = ["unknown person", "bad password", "inactive"]
    return AuditEvent.objects.filter(verb="auth.sign_in_failed", details__reason__in=checked).count()


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=5, SIGN_IN_MAX_FAILURES_PER_ADDRESS=1000)
def test_forty_parallel_wrong_passwords_for_one_account_have_five_checked(
    make_person: Callable[..., Person], checked: list[str]
) -> None:
    make_person("alice")
    pages = in_parallel(40, lambda n: sign_in("alice", "wrong-password", address=f"10.1.0.{n + 1}"))
    assert len(checked) == 5
    assert sum(NOT_RIGHT in page for page in pages) == 5
    assert sum(THROTTLED in page for page in pages) == 35
    assert failures_checked() == 5
    # The right password is refused too, unchecked, until the window ends.
    assert THROTTLED in sign_in("alice", address="10.1.1.1")
    assert len(checked) == 5


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=1000, SIGN_IN_MAX_FAILURES_PER_ADDRESS=5)
def test_forty_parallel_wrong_passwords_from_one_address_have_five_checked(
    make_person: Callable[..., Person], checked: list[str]
) -> None:
    for number in range(40):
        make_person(f"person-{number}")
    pages = in_parallel(40, lambda n: sign_in(f"person-{n}", "wrong-password", address="192.0.2.7"))
    assert len(checked) == 5
    assert sum(THROTTLED in page for page in pages) == 35
    assert failures_checked() == 5
    assert sign_in("person-0", address="192.0.2.8") == "redirect:/"


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=5, SIGN_IN_MAX_FAILURES_PER_ADDRESS=1000)
def test_parallel_wrong_passwords_spelled_every_way_share_one_count(
    make_person: Callable[..., Person], checked: list[str]
) -> None:
    make_person("sikorski")
    spellings = ["sikorski", "SIKORSKI", "ｓｉｋｏｒｓｋｉ", "ſikorſki", "si\u212aorski"]
    pages = in_parallel(40, lambda n: sign_in(spellings[n % 5], "wrong-password", address=f"10.2.0.{n + 1}"))
    assert len(checked) == 5
    assert sum(THROTTLED in page for page in pages) == 35


# Fullwidth letters, the long s, the Kelvin sign, case: NFKC and case folding make them the name.
SAME_NAME = [
    "SIKORSKI",
    "Sikorski",
    "ｓｉｋｏｒｓｋｉ",
    "ＳＩＫＯＲＳＫＩ",
    "ſikorſki",
    "si\u212aorski",
    "SI\u212aORSKI",
]
# A dotless ı and a dotted İ stay letters of their own (PostgreSQL's upper() would make them I).
OTHER_NAMES = ["sıkorskı", "SİKORSKİ", "sikorskı"]


@pytest.mark.parametrize("spelling", SAME_NAME)
def test_a_spelling_of_a_locked_name_is_locked_too(
    spelling: str, make_person: Callable[..., Person], settings: Any
) -> None:
    settings.SIGN_IN_MAX_FAILURES_PER_ACCOUNT = 3
    make_person("sikorski")
    for attempt in range(3):
        assert NOT_RIGHT in sign_in("sikorski", "wrong-password", address=f"10.3.0.{attempt + 1}")
    assert THROTTLED in sign_in(spelling, address="10.3.1.1")
    assert THROTTLED in sign_in("sikorski", address="10.3.1.2")


@pytest.mark.parametrize("spelling", SAME_NAME)
def test_failures_under_a_spelling_lock_the_name(
    spelling: str, make_person: Callable[..., Person], settings: Any
) -> None:
    settings.SIGN_IN_MAX_FAILURES_PER_ACCOUNT = 3
    make_person("sikorski")
    for attempt in range(3):
        assert NOT_RIGHT in sign_in(spelling, "wrong-password", address=f"10.4.0.{attempt + 1}")
    assert THROTTLED in sign_in("sikorski", address="10.4.1.1")


@pytest.mark.parametrize("spelling", SAME_NAME)
def test_a_spelling_of_the_name_signs_in_as_its_person(spelling: str, make_person: Callable[..., Person]) -> None:
    sikorski = make_person("sikorski")
    client = Client()
    response = client.post("/sign-in/", {"username": spelling, "password": PASSWORD})
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == sikorski.pk


@pytest.mark.parametrize("spelling", OTHER_NAMES)
def test_a_name_that_folds_differently_never_reaches_the_person(
    spelling: str, make_person: Callable[..., Person], checked: list[str], settings: Any
) -> None:
    settings.SIGN_IN_MAX_FAILURES_PER_ACCOUNT = 3
    make_person("sikorski")
    assert username_key(spelling) != username_key("sikorski")
    assert person_for_sign_in(spelling) is None
    # Not while the name is open, and not while it is locked: it is nobody's name.
    assert NOT_RIGHT in sign_in(spelling)
    for attempt in range(3):
        sign_in("sikorski", "wrong-password", address=f"10.5.0.{attempt + 1}")
    assert NOT_RIGHT in sign_in(spelling, address="10.5.1.1")
    assert checked == ["sikorski"] * 3


def test_the_person_spelled_as_typed_signs_in_where_two_names_fold_alike(make_person: Callable[..., Person]) -> None:
    plain = make_person("admin")
    wide = make_person("ａｄｍｉｎ")  # the database's case rules keep both
    assert person_for_sign_in("admin") == plain
    assert person_for_sign_in("ADMIN") == plain
    assert person_for_sign_in("ａｄｍｉｎ") == wide


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=3, SIGN_IN_MAX_FAILURES_PER_ADDRESS=1000)
def test_the_right_password_clears_the_account_count(make_person: Callable[..., Person]) -> None:
    make_person("alice")
    for _ in range(2):
        assert NOT_RIGHT in sign_in("alice", "wrong-password")
    assert sign_in("alice") == "redirect:/"
    for _ in range(3):
        assert NOT_RIGHT in sign_in("alice", "wrong-password")
    assert THROTTLED in sign_in("alice")


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=1000, SIGN_IN_MAX_FAILURES_PER_ADDRESS=3)
def test_sign_ins_with_the_right_password_do_not_count_against_the_address(
    make_person: Callable[..., Person],
) -> None:
    for number in range(6):
        make_person(f"person-{number}")
        assert sign_in(f"person-{number}", address="192.0.2.9") == "redirect:/"
    for number in range(3):
        assert NOT_RIGHT in sign_in(f"person-{number}", "wrong-password", address="192.0.2.9")
    assert THROTTLED in sign_in("person-5", address="192.0.2.9")


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=3, SIGN_IN_MAX_FAILURES_PER_ADDRESS=3)
def test_an_attempt_refused_for_its_account_costs_the_address_nothing(make_person: Callable[..., Person]) -> None:
    make_person("alice")
    make_person("bob")
    for attempt in range(3):
        sign_in("alice", "wrong-password", address=f"10.6.0.{attempt + 1}")
    for _ in range(5):
        assert THROTTLED in sign_in("alice", address="10.6.1.1")
    assert sign_in("bob", address="10.6.1.1") == "redirect:/"


@override_settings(SIGN_IN_MAX_FAILURES_PER_ACCOUNT=2, SIGN_IN_THROTTLE_WINDOW_SECONDS=1)
def test_the_account_opens_again_when_the_window_ends(make_person: Callable[..., Person]) -> None:
    make_person("alice")
    for _ in range(2):
        sign_in("alice", "wrong-password")
    assert THROTTLED in sign_in("alice")
    time.sleep(1.1)
    assert sign_in("alice") == "redirect:/"
