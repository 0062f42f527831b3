"""Slack input read back (``inputs.form_values``, ``picked_time``, ``submitted_summary``,
``bot.answers.decode``) whatever its shape: over HTTP, ``channels.slack.http`` refuses most odd
shapes before they get here, but Socket Mode payloads are not checked there, so what is not
where and what Slack puts it must read as nothing, never raise."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot import answers
from bot.messages import slack as msg
from channels.slack import inputs

LONDON = ZoneInfo("Europe/London")
ODD = [None, True, 5, 2.5, "values", [], ["f.name"], [{"f.name": {}}], {"f.name": "v"},
       {"f.name": {"v": "x"}}, {"f.name": {"v": ["x"]}}, {("t",): {}}, {5: {"v": {}}}]


@pytest.mark.parametrize("state", ODD, ids=range(len(ODD)))
def test_form_values_of_any_shape_read_as_nothing(state: Any) -> None:
    assert inputs.form_values(state) == {}


@pytest.mark.parametrize("element", [
    {"type": "static_select", "selected_option": "NHS"},
    {"type": "static_select", "selected_option": {"value": 5}},
    {"type": "checkboxes", "selected_options": "yes"},
    {"type": "checkboxes", "selected_options": 7},
    {"type": "checkboxes", "selected_options": ["yes", 3, None]},
    {"type": "plain_text_input", "value": {"text": "x"}},
    {"type": "plain_text_input", "value": ["x"]},
    {"type": ["static_select"], "value": None},
])
def test_form_field_values_of_the_wrong_type_read_as_empty(element: dict[str, Any]) -> None:
    assert inputs.form_values({"f.name": {"v": element}}) == {"name": ""}


def test_form_values_of_slacks_shapes() -> None:
    state = {"f.name": {"v": {"type": "plain_text_input", "value": "Priya Shah"}},
             "f.org": {"v": {"type": "static_select", "selected_option": {
                 "text": {"type": "plain_text", "text": "NHS"}, "value": "nhs"}}},
             "f.ok": {"v": {"type": "checkboxes", "selected_options": [
                 {"text": {"type": "plain_text", "text": "Yes"}, "value": "yes"}]}},
             "f.empty": {"v": {"type": "plain_text_input", "value": None}},
             "other": {"v": {"type": "plain_text_input", "value": "ignored"}}}
    assert inputs.form_values(state) == {"name": "Priya Shah", "org": "nhs", "ok": "yes",
                                         "empty": ""}


def _picked(stamp: Any) -> str | None:
    return inputs.picked_time({"sh.q:call_time": {"sh.time.pick": {
        "type": "datetimepicker", "selected_date_time": stamp}}}, "call_time", LONDON)


def test_picked_time_of_slacks_shape() -> None:
    assert _picked(1795510800) == "2026-11-24 09:00"
    assert _picked("1795510800") == "2026-11-24 09:00"


@pytest.mark.parametrize("stamp", [None, True, 2.5, -5, "", "soon", "²³", "١٧٩٥٥١٠٨٠٠",
                                   "9" * 5000, 2**70, 10**12, "1" * 13, [1795510800],
                                   {"t": 1795510800}])
def test_picked_time_that_is_not_a_time_is_nothing(stamp: Any) -> None:
    assert _picked(stamp) is None


@pytest.mark.parametrize("state", [*ODD, {"sh.q:call_time": "x"},
                                   {"sh.q:call_time": {"sh.time.pick": 5}}],
                         ids=range(len(ODD) + 2))
def test_picker_state_of_any_shape_is_nothing(state: Any) -> None:
    assert inputs.picked_time(state, "call_time", LONDON) is None


@pytest.mark.parametrize("view", [
    None, "view", [], {"state": "values"}, {"state": {"values": ["f.name"]}},
    {"blocks": "f.name"}, {"blocks": [5, "x", None]},
    {"blocks": [{"type": "input", "block_id": {"b": 1}, "label": {"text": "x"}}]},
    {"blocks": [{"type": "input", "block_id": ["f.name"]}], "state": {"values": {}}},
    {"blocks": [{"type": "input", "block_id": "f.name", "label": "Full name"}],
     "state": {"values": {"f.name": "x"}}},
    {"blocks": [{"type": "input", "block_id": "f.name", "label": {"text": "x"}}],
     "state": {"values": {"f.name": {"v": {"type": "checkboxes",
                                           "selected_options": "yes"}}}}},
    {"blocks": [{"type": "input", "block_id": "f.name", "label": {"text": "x"}}],
     "state": {"values": {"f.name": {"v": {"type": "static_select",
                                           "selected_option": {"text": "NHS"}}}}}},
], ids=range(12))
def test_submitted_summary_of_any_shape_is_empty(view: Any) -> None:
    assert inputs.submitted_summary(view) == ""


def test_submitted_summary_keeps_what_it_can_read() -> None:
    view = {"blocks": [
        {"type": "input", "block_id": "f.name", "label": "Full name"},
        {"type": "input", "block_id": "f.org", "label": {"type": "plain_text", "text": "Org"}},
        {"type": "input", "block_id": "f.ok", "label": {"text": "OK"}}],
        "state": {"values": {
            "f.name": {"v": {"type": "plain_text_input", "value": "Priya  Shah"}},
            "f.org": {"v": {"type": "static_select", "selected_option": {
                "text": {"type": "plain_text", "text": "NHS"}, "value": "nhs"}}},
            "f.ok": {"v": {"type": "checkboxes", "selected_options": [
                {"text": {"text": "Yes"}, "value": "yes"}, "junk"]}}}}}
    # A label that is not Slack's object reads as no label.
    assert inputs.submitted_summary(view) == msg.ANSWER_SEPARATOR.join(
        [": Priya Shah", "Org: NHS", "OK: Yes"])


@pytest.mark.parametrize("raw", [None, 5, ["x"], {"q": "x"}, "", "not json", "[1]",
                                 "[" * 5000, json.dumps({"q": 5, "v": "x"}),
                                 json.dumps({"q": "x", "v": 5}),
                                 json.dumps({"q": "approval:SH-\ud800", "v": "approve"}),
                                 json.dumps({"q": "call_time", "v": "10:00\x00"}),
                                 json.dumps({"q": "x\n", "v": ""})])
def test_a_button_value_that_is_not_ours_is_no_answer(raw: Any) -> None:
    assert answers.decode(raw) is None


def test_a_button_value_of_ours_is_an_answer() -> None:
    assert answers.decode(answers.encode("approval:SH-AB12-34", "approve")) == (
        "approval:SH-AB12-34", "approve")
    assert answers.decode('{"q": "classification"}') == ("classification", "")
