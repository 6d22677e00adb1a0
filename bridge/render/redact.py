"""Secret redaction applied to every piece of text before it leaves the box.

Agents print whatever they see: ``env`` dumps, ``.env`` files, curl commands with bearer
headers, private keys they were asked to inspect. Everything mirrored to Slack goes through
:func:`redact` first, so a leaked credential stays on the machine that already had it.

Design rules, and why:

* Known token shapes are replaced by a labelled marker (``[REDACTED:github-token]``) so a reader
  still understands what the agent was doing; generic ``key=value`` assignments keep the key
  (``password=[REDACTED]``) for the same reason.
* Every pattern is precompiled and written so the regex engine does bounded work per input
  position (no nested ambiguous quantifiers, bounded prefixes): transcripts can hold megabytes
  of tool output and a catastrophic backtrack would stall the whole mirror.
* False positives are cheap (a word hidden), false negatives are not, but code is mirrored
  constantly, so the generic assignment rule skips obvious code and placeholders
  (``token=get_token()``, ``password: str``, ``TOKEN=$GITHUB_TOKEN``) and an unquoted ``key: value``
  (ambiguous with prose, "the password: it changed") is only redacted when the value looks
  secret-ish (has a digit or symbol, or is long).
* Redaction is idempotent: running it on already-redacted text changes nothing, so callers may
  apply it at several layers without fear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Redactor", "redact"]

MARK = "[REDACTED]"


def _marker(label: str) -> str:
    return f"[REDACTED:{label}]"


# Characters that may follow a token without being part of it; used instead of ``\b`` because
# several token alphabets contain ``-``, after which ``\b`` behaves surprisingly.
_END = r"(?![A-Za-z0-9_-])"

#: (label, pattern, needles) for whole-token shapes, applied in order: more specific shapes
#: first (Anthropic's ``sk-ant-`` before OpenAI's ``sk-``). A pattern only runs when one of its
#: lower-case needles occurs in the text: most text holds no secret, and skipping a regex
#: scan is the cheapest speed-up there is.
_TOKEN_PATTERNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "slack-webhook",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
        ("hooks.slack.com",),
    ),
    ("slack-token", r"\bxox(?:[abprs]|e(?:\.xox[bp])?)-[A-Za-z0-9-]{10,}", ("xox",)),
    ("slack-token", r"\bxapp-[A-Za-z0-9-]{10,}", ("xapp-",)),
    (
        "github-token",
        r"\bgh[pousr]_[A-Za-z0-9]{20,255}" + _END,
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
    ),
    ("github-token", r"\bgithub_pat_[A-Za-z0-9_]{20,255}" + _END, ("github_pat_",)),
    ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{16,}", ("sk-ant-",)),
    # The body must hold a digit so long hyphenated identifiers ("sk-learn-style-...") survive.
    (
        "openai-key",
        r"\bsk-(?:proj-|svcacct-|admin-)?(?=[A-Za-z_-]{0,40}[0-9])[A-Za-z0-9_-]{20,}",
        ("sk-",),
    ),
    ("aws-access-key-id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])", ("akia", "asia")),
    ("google-api-key", r"\bAIza[A-Za-z0-9_-]{35}" + _END, ("aiza",)),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", ("eyj",)),
)

_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
# Body of a key whose END line is missing (e.g. ``head -5 id_rsa``): header lines, base64
# lines, and a blank line only when base64 follows it. Every iteration starts with a newline,
# so the repetition is unambiguous and linear.
_B64_LINE = r"[A-Za-z0-9+/=]+(?=\r?\n|\Z)"
_PEM_BODY = re.compile(
    r"(?:\r?\n(?:(?:Proc-Type|DEK-Info|Comment):[^\r\n]*|"
    + _B64_LINE
    + r"|(?=\r?\n"
    + _B64_LINE
    + r")))*"
)

_AUTH_HEADER = re.compile(
    r"(?i)(\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:bearer|basic|token|bot)[ \t]+)"
    r"(?!\$|\[REDACTED)[A-Za-z0-9._~+/=-]+"
)
_BEARER = re.compile(r"(?i)(\bbearer[ \t]+)(?=[A-Za-z0-9._~+/-]{20})[A-Za-z0-9._~+/=-]+")
_URL_USERINFO = re.compile(
    r"(?i)\b([a-z][a-z0-9+.-]{0,20}://[^\s:/@<>|]+:)(?!\[REDACTED)[^\s/@<>|]+@"
)

_KEYWORDS = (
    r"passw(?:or)?d|secret|token|api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key"
    r"|client[_-]?secret"
)
# keyword, optional closing quote (possibly JSON-escaped), separator; ``==``/``=>``/``::`` are
# comparisons, arrows and paths, not assignments. The value comes next: quoted, or a bare run.
_ASSIGNMENT = re.compile(
    # The leading lookahead lets the engine reject most positions with one class test.
    r"(?i)(?=[pstac])(?P<head>(?:" + _KEYWORDS + r")\\?[\"']?[ \t]*(?P<sep>:=|=|:)(?![=>:])[ \t]*)"
    r"(?:\"(?P<dq>[^\"\r\n]*)\"|'(?P<sq>[^'\r\n]*)'|\\\"(?P<eq>[^\"\r\n\\]*)\\\""
    r"|(?P<lead>\\?[\"'])?(?P<val>[^\s\"'`,;&<>)\]}\\]+))"
)
_PLACEHOLDER_START = ("$", "{", "%", "<", "[REDACTED", "*", "os.environ", "process.env")
_CODE_CHARS = frozenset("([")
_IDENT_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")
_SECRETISH = re.compile(r"[0-9\W_]")
_SECRET_WORD = re.compile(r"pass|secret|token|key")
_LITERALS = frozenset({"none", "null", "nil", "true", "false", "undefined"})


def _key_name(text: str, start: int) -> str:
    """The identifier the keyword at ``start`` belongs to (``DB_PASSWORD`` for ``PASSWORD``)."""
    i = start
    while i > 0 and start - i < 64 and (text[i - 1].isalnum() or text[i - 1] in "_-."):
        i -= 1
    return text[i:start]


def _skip_value(value: str, *, colon: bool, quoted: bool, key: str) -> bool:
    """Whether an assignment's value is code or a placeholder rather than a secret."""
    if not value or value.startswith(_PLACEHOLDER_START):
        return True
    if quoted:
        return False
    if _CODE_CHARS & set(value) or value.lower() in _LITERALS:  # token=get_token(), =None
        return True
    if _IDENT_PATH.fullmatch(value):  # a variable passed on: token=token, key=self.api_key
        last = value.rsplit(".", 1)[-1].lstrip("_").lower()
        if last == key.rsplit(".", 1)[-1].lstrip("_").lower():
            return True
        if "." in value and _SECRET_WORD.search(last):
            return True
    # "password: str", "the secret: it is..." — colon values must look like a secret.
    return colon and len(value) < 12 and not _SECRETISH.search(value)


def _assignment_sub(m: re.Match[str]) -> str:
    keyword = m.string[m.start() : m.start("sep")].rstrip("\\\"' \t")
    key = _key_name(m.string, m.start()) + keyword
    colon = m.group("sep") == ":"
    for group, quote in (("dq", '"'), ("sq", "'"), ("eq", '\\"')):
        value = m.group(group)
        if value is not None:
            if _skip_value(value, colon=colon, quoted=True, key=key):
                return m.group(0)
            return f"{m.group('head')}{quote}{MARK}{quote}"
    if _skip_value(m.group("val"), colon=colon, quoted=m.group("lead") is not None, key=key):
        return m.group(0)
    return m.group("head") + (m.group("lead") or "") + MARK


def _redact_pem(text: str) -> str:
    """Replace private key blocks; a block with no END is cut after its body lines.

    Done by hand rather than with ``BEGIN[\\s\\S]*?END`` so many BEGIN lines without an END
    cost linear time: once one END search fails, no later one can succeed.
    """
    out: list[str] = []
    pos = 0
    end_missing = False
    while (begin := _PEM_BEGIN.search(text, pos)) is not None:
        end = None if end_missing else _PEM_END.search(text, begin.end())
        if end is not None:
            stop = end.end()
        else:
            end_missing = True
            body = _PEM_BODY.match(text, begin.end())
            stop = body.end() if body else begin.end()
        out.append(text[pos : begin.start()])
        out.append(_marker("private-key"))
        pos = stop
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    replacement: str
    needles: tuple[str, ...] = ()

    def apply(self, text: str, lowered: str) -> str:
        if self.needles and not any(needle in lowered for needle in self.needles):
            return text
        return self.pattern.sub(self.replacement, text)


class Redactor:
    """The built-in rules, compiled once; :func:`redact` uses the shared instance."""

    def __init__(self) -> None:
        self._tokens = tuple(
            _Rule(re.compile(p), _marker(label), needles) for label, p, needles in _TOKEN_PATTERNS
        )

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        """Return ``text`` with every recognised secret replaced by a marker."""
        if not text:
            return text
        # Needles are looked up in the original text: replacements only ever insert markers,
        # which never create a new match for a later rule.
        lowered = text.lower()
        if "-----begin" in lowered:
            text = _redact_pem(text)
        for rule in self._tokens:
            text = rule.apply(text, lowered)
        if "authorization" in lowered:
            text = _AUTH_HEADER.sub(lambda m: m.group(1) + MARK, text)
        if "bearer" in lowered:
            text = _BEARER.sub(lambda m: m.group(1) + MARK, text)
        if "://" in lowered and "@" in lowered:
            text = _URL_USERINFO.sub(lambda m: m.group(1) + MARK + "@", text)
        if any(word in lowered for word in ("pass", "secret", "token", "key")):
            text = _ASSIGNMENT.sub(_assignment_sub, text)
        return text


_DEFAULT = Redactor()


def redact(text: str) -> str:
    """Redact secrets from ``text`` with the built-in rules; the main entry point."""
    return _DEFAULT.redact(text)
