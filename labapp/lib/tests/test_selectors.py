"""Label selectors matched locally, as the API server would match them."""

from __future__ import annotations

import pytest

from labapp.lib.selectors import SelectorError, parse_selector

LABELS = {"app.kubernetes.io/name": "assets", "tier": "web", "env": "lab"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        (None, True),
        ("app.kubernetes.io/name=assets", True),
        ("app.kubernetes.io/name==assets", True),
        ("app.kubernetes.io/name=other", False),
        ("tier!=db", True),
        ("tier!=web", False),
        ("missing!=x", True),  # as the API server: an absent label is "not x"
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("env in (lab, prod)", True),
        ("env in (prod)", False),
        ("env notin (prod,stage)", True),
        ("missing notin (a)", True),
        ("tier=web,env in (lab),!missing", True),
        ("tier=web, env=prod", False),
    ],
)
def test_selectors_match_as_the_api_server_does(selector, matches):
    assert parse_selector(selector)(LABELS) is matches


@pytest.mark.parametrize("selector", ["tier=(web)", "a b", "env in lab"])
def test_a_selector_that_cannot_be_read_is_refused_naming_the_part(selector):
    with pytest.raises(SelectorError, match="cannot read the label selector part"):
        parse_selector(selector)
