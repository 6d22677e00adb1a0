"""Claude's ``AskUserQuestion`` picker read off the pane, and the keys that answer it.

The fallback for when no blocking hook answers a question (a hook that failed, a CLI whose
hook answer does not work): the runner recognises the picker on screen, posts it like a hook
question, and types the person's answer. As drawn by claude 2.1.328
(fixtures ``claude-2.1.328/ask-user-question/pane-picker.txt``)::

    ────────────────────────────
     ☐ Color                          <- the tab bar: one ☐/✔ header per question
    Which color for zz91?             <- the question (may wrap)
    ❯ 1. red-zz91                     <- numbered options, the cursor on one
         the red one                  <- its description, indented
      2. blue-zz91
      3. Type something.              <- the free-text entry
    ────────────────────────────
      4. Chat about this
    Enter to select · ↑/↓ to navigate · Esc to cancel

A multi-select question draws ``[ ]`` boxes before the labels (cli-signals.md section c:
digits toggle, ``→`` opens the review, Enter submits). Only the question on screen is read;
the runner prefers the transcript's ``tool_use`` input, which has every question exactly.

Claude's *permission* dialog is never read as a picker (:func:`_is_permission_dialog`): a
picker must show its "Type something." entry, and the dialog's own words refuse it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from runtimes.asks import Option, Question

_FOOTER = re.compile(r"Enter to (select|confirm|submit)|Esc to cancel")
_OPTION = re.compile(r"^\s*(?:❯\s*)?(\d+)\.\s+(.*?)\s*$")
_BOX = re.compile(r"^\[(?:\s|[✔✓xX×])\]\s*")
_RULE = re.compile(r"^\s*[─━]{8,}\s*$")
_TAB = re.compile(r"[☐☒✔✓]\s*([^☐☒✔✓←→]+)")
_PERMISSION_OPTION = re.compile(
    r"^(?:Yes, and (?:always allow|don.t ask again|switch to|allow all)|Yes, allow all"
    r"|No, and tell Claude)"
)
_PERMISSION_QUESTION = re.compile(
    r"^Do you want to (?:proceed|make this edit|create|allow Claude|delete|overwrite)"
)
_PERMISSION_TITLES = frozenset({"Bash command", "PowerShell command"})
OTHER_LABEL = "Type something."
CHAT_LABEL = "Chat about this"


@dataclass(frozen=True, slots=True)
class Picker:
    """One question of the picker as the pane shows it."""

    question: str
    header: str
    options: tuple[Option, ...]
    """The model's options, in screen order (numbered from 1)."""
    multi: bool
    other: int | None
    """The number of the "Type something." entry (free text), if shown."""
    tabs: tuple[str, ...] = ()
    """Every question's header when the call asks several."""

    def as_question(self) -> Question:
        return Question(self.question, self.header, self.options, self.multi)


Key = tuple[str, str]
"""("key", tmux key name) or ("text", literal text to paste)."""


def parse_picker(screen: str) -> Picker | None:
    """The question picker on ``screen``, or None when none is drawn (or it is unreadable)."""
    lines = screen.splitlines()
    footer = next((i for i in range(len(lines) - 1, -1, -1) if _FOOTER.search(lines[i])), None)
    if footer is None:
        return None
    top = next(
        (i for i in range(footer - 1, -1, -1) if _TAB.search(lines[i]) and "[" not in lines[i]),
        None,
    )
    if top is None:
        return None
    tabs = tuple(m.group(1).strip() for m in _TAB.finditer(lines[top]) if m.group(1).strip())
    text: list[str] = []
    entries: list[tuple[int, str, list[str]]] = []
    for line in lines[top + 1 : footer]:
        if _RULE.match(line) or not line.strip():
            continue
        m = _OPTION.match(line)
        if m:
            entries.append((int(m.group(1)), m.group(2), []))
        elif entries:
            entries[-1][2].append(line.strip())
        else:
            text.append(line.strip())
    if not entries or not text:
        return None
    options: list[Option] = []
    multi = False
    other: int | None = None
    for number, label, desc in entries:
        if _BOX.match(label):
            multi = True
            label = _BOX.sub("", label, count=1)
        if label.rstrip(".") == OTHER_LABEL.rstrip("."):
            other = number
        elif label == CHAT_LABEL or label.lower() in ("submit", "next"):
            continue
        elif number == len(options) + 1:
            options.append(Option(label, " ".join(desc)))
    if not options or other is None or _is_permission_dialog(text, entries):
        return None
    header = tabs[0] if len(tabs) == 1 else ""
    return Picker(" ".join(text), header, tuple(options), multi, other, tabs)


def _is_permission_dialog(text: list[str], entries: list[tuple[int, str, list[str]]]) -> bool:
    """Claude's own permission dialog (``Do you want to proceed?`` / ``1. Yes`` / ``2. Yes, and
    always allow ...`` / ``3. Yes, and switch to auto mode`` / ``4. No``), drawn when no hook
    decided. It has the picker's footer, and any ``✓``/``☐`` higher on screen (test output, a
    todo list) looks like a tab bar; answering it would approve a command nobody approved.
    The question picker always draws its free-text entry (``Type something.``), which the
    dialog never has (checked by the caller); these are the dialog's own words besides."""
    return (
        any(_PERMISSION_OPTION.match(label) for _, label, _ in entries)
        or any(_PERMISSION_QUESTION.match(line) for line in text)
        or any(line in _PERMISSION_TITLES for line in text)
    )


def picker_keys(picker: Picker, value: str) -> tuple[Key, ...]:
    """The keystrokes that give ``value`` (an answer as the hook path stores it: a label, the
    labels joined with ``", "`` for multi-select, or free text) to the picker on screen.

    Single choice: the option's digit (Claude selects on the digit), then Enter. Multi-select:
    each digit toggles its box, ``Right`` opens the review, Enter submits. Free text: the
    "Type something." digit, the text pasted, Enter.
    """
    labels = [o.label for o in picker.options]
    if picker.multi:
        chosen = [part.strip() for part in value.split(", ")]
        if chosen and all(c in labels for c in chosen):
            digits = [("key", str(labels.index(c) + 1)) for c in chosen]
            return (*digits, ("key", "Right"), ("key", "Enter"))
    elif value in labels:
        return (("key", str(labels.index(value) + 1)), ("key", "Enter"))
    if picker.other is None:
        return ()
    return (("key", str(picker.other)), ("text", value), ("key", "Enter"))
