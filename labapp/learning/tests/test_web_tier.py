"""The web tier does not redo work: lab text is rendered once per lab and per
learner's namespaces, each CEL expression is compiled once, and the endpoints
the page polls (sandbox status, refresh after a tick) run a few queries and
no Markdown.

The Markdown renderer is counted by wrapping `markdown.markdown` where
`labapp.catalog.rendering` calls it (a patch that counts and passes through)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from labapp.catalog import rendering
from labapp.checks import kinds
from labapp.learning.services import lab_start
from labapp.sandboxes.models import Sandbox
from tests.fixtures.personas import logged_in

pytestmark = pytest.mark.django_db
LAB = "/labs/tiny"
CEL = "object.data.GREETING == 'hello'"


@pytest.fixture(autouse=True)
def sandbox_home(settings, tmp_path):
    settings.SANDBOX_HOME = tmp_path


@pytest.fixture(autouse=True)
def fresh_render_cache() -> Iterator[None]:
    rendering.forget_rendered()
    yield
    rendering.forget_rendered()


class Counter:
    def __init__(self, real: Callable[..., Any]) -> None:
        self.real, self.calls = real, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.real(*args, **kwargs)


@pytest.fixture
def markdown_calls(monkeypatch) -> Counter:
    counter = Counter(rendering.markdown.markdown)
    monkeypatch.setattr(rendering.markdown, "markdown", counter)
    return counter


@pytest.fixture
def cel_compiles(monkeypatch) -> Counter:
    kinds._cel_program.cache_clear()
    counter = Counter(kinds._CEL.compile)
    monkeypatch.setattr(kinds._CEL, "compile", counter)
    return counter


def started(user, lab_id: str = "tiny") -> Client:
    """`user` has started the lab and its sandbox is ready; their browser."""
    lab_start(user=user, lab_id=lab_id)
    Sandbox.objects.filter(owner=user, lab_id=lab_id).update(state=Sandbox.State.READY)
    return logged_in(user)


def test_fifty_learners_make_one_rendering_each_and_one_cel_compile_in_all(
    lab_copy, cel_compiles, markdown_calls, django_user_model
):
    def with_a_cel_check(lab: dict) -> None:
        lab["steps"][1]["checks"].append(
            {
                "kind": "cel",
                "title": "the greeting is hello",
                "object": {"kind": "ConfigMap", "name": "shop", "namespace": "{{ ns.shop }}"},
                "expression": CEL,
            }
        )

    lab_copy.edit("tiny", with_a_cel_check)
    steps = 3
    for number in range(50):
        browser = started(django_user_model.objects.create_user(f"learner{number}"))
        for _ in range(3):  # the page, and two more visits
            page = browser.get(f"{LAB}/")
            assert page.status_code == 200
        assert "the greeting is hello" in page.content.decode()
        assert browser.get(f"{LAB}/refresh/").status_code == 200
    assert cel_compiles.calls == 1  # loading the lab; rendering reuses the program
    assert markdown_calls.calls == 50 * steps  # each learner's names, once


def test_the_polled_endpoints_run_a_few_queries_and_no_markdown(
    tiny_lab, learner, markdown_calls, django_assert_max_num_queries
):
    browser = started(learner)
    assert browser.get(f"{LAB}/").status_code == 200
    rendered = markdown_calls.calls
    assert rendered == len(tiny_lab.steps)
    with django_assert_max_num_queries(4):  # session, user, the lab record, the sandbox
        status = browser.get(f"{LAB}/sandbox/")
    assert status.status_code == 200 and "Sandbox ready" in status.content.decode()
    with django_assert_max_num_queries(5):  # ... and the steps' records
        refresh = browser.get(f"{LAB}/refresh/", headers={"HX-Request": "true"})
    assert refresh.status_code == 200 and 'id="step-configure"' in refresh.content.decode()
    assert markdown_calls.calls == rendered


def test_a_reloaded_lab_is_rendered_anew(lab_copy, learner):
    browser = started(learner)
    assert "Pod Security Admission enforces" in browser.get(f"{LAB}/").content.decode()
    text = lab_copy.workspace_file("steps/01-label-namespace.md")
    text.write_text("A brand new text for this step.\n")
    lab_copy.edit("tiny", lambda lab: None)  # the registry reloads the lab
    assert "A brand new text for this step." in browser.get(f"{LAB}/").content.decode()


def test_learners_never_see_each_others_names(tiny_lab, learner, another_learner):
    ada, bob = started(learner), started(another_learner)
    ada_ns = Sandbox.objects.get(owner=learner).namespaces["shop"]
    bob_ns = Sandbox.objects.get(owner=another_learner).namespaces["shop"]
    ada_page = ada.get(f"{LAB}/").content.decode()
    bob_page = bob.get(f"{LAB}/").content.decode()
    assert ada_ns in ada_page and bob_ns not in ada_page
    assert bob_ns in bob_page and ada_ns not in bob_page
