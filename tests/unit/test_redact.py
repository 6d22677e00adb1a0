"""Table tests for bridge.render.redact.

Fake secrets are assembled at runtime (``"xox" + "b-"``) so that no secret scanner flags this
file: the point is the shape, never a real credential.
"""

from __future__ import annotations

import pytest

from bridge.render.redact import redact
from tests.unit.cputime import SCALE, assert_linear

B62 = "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xYz"  # 34 mixed alphanumerics, digits included


def body(n: int) -> str:
    """``n`` characters of plausible token body."""
    return (B62 * (n // len(B62) + 1))[:n]


SLACK_BOT = "xox" + "b-1234567890-1234567890123-" + body(24)
SLACK_USER = "xox" + "p-1234567890-1234567890-1234567890123-" + body(32)
SLACK_APP = "xa" + "pp-1-A0123456789-1234567890123-" + body(40)
GH_CLASSIC = "gh" + "p_" + body(36)
GH_PAT = "github" + "_pat_11ABCDEFG0" + body(70)
OPENAI = "s" + "k-" + body(48)
OPENAI_PROJ = "s" + "k-proj-" + body(60) + "_-" + body(40)
ANTHROPIC = "s" + "k-ant-api03-" + body(80) + "-" + body(12) + "AA"
AWS_ID = "AK" + "IA" + "IOSFODNN7EXAMPL"[:15] + "E"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY"
GOOGLE = "AI" + "za" + body(35)
JWT = (
    "ey" + "JhbGciOiJIUzI1NiJ9.ey" + "JzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
WEBHOOK = "https://hooks." + "slack.com/services/T00000000/B00000000/" + body(24)
PEM_BODY = "MIIEowIBAAKCAQEA" + body(48) + "\n" + body(64) + "\n" + body(20) + "=="


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Slack
        (f"bot {SLACK_BOT} end", "bot [REDACTED:slack-token] end"),
        (f"user {SLACK_USER}", "user [REDACTED:slack-token]"),
        (f"{SLACK_APP}", "[REDACTED:slack-token]"),
        (f"xox{'a'}-2-{body(30)}", "[REDACTED:slack-token]"),
        (f"xox{'s'}-{body(30)}", "[REDACTED:slack-token]"),
        (f"xox{'e'}-1-{body(30)}", "[REDACTED:slack-token]"),
        (f"xox{'e'}.xoxp-1-{body(30)}", "[REDACTED:slack-token]"),
        (f"curl -X POST {WEBHOOK} -d x", "curl -X POST [REDACTED:slack-webhook] -d x"),
        # GitHub
        (f"remote {GH_CLASSIC}.", "remote [REDACTED:github-token]."),
        *((f"gh{k}_{body(36)}", "[REDACTED:github-token]") for k in "ousr"),
        (GH_PAT, "[REDACTED:github-token]"),
        # OpenAI / Anthropic
        (f"key={OPENAI}", "key=[REDACTED:openai-key]"),
        (OPENAI_PROJ, "[REDACTED:openai-key]"),
        ("s" + "k-svcacct-" + body(50), "[REDACTED:openai-key]"),
        (f"ANTHROPIC_API_KEY={ANTHROPIC}", "ANTHROPIC_API_KEY=[REDACTED:anthropic-key]"),
        ("s" + "k-ant-" + body(40), "[REDACTED:anthropic-key]"),
        # AWS
        (f"id {AWS_ID} ok", "id [REDACTED:aws-access-key-id] ok"),
        ("AS" + "IA" + "Y3FDSNKR7EXAMPLE", "[REDACTED:aws-access-key-id]"),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws_secret_access_key = [REDACTED]"),
        (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", "AWS_SECRET_ACCESS_KEY=[REDACTED]"),
        # Google, JWT
        (f"maps?key={GOOGLE}&x=1", "maps?key=[REDACTED:google-api-key]&x=1"),
        (f"jwt: {JWT}", "jwt: [REDACTED:jwt]"),
        # PEM
        (
            f"a\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\nb",
            "a\n[REDACTED:private-key]\nb",
        ),
        (
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\n-----END OPENSSH PRIVATE KEY-----",
            "[REDACTED:private-key]",
        ),
        (
            f"-----BEGIN PRIVATE KEY-----\r\n{PEM_BODY}\r\n-----END PRIVATE KEY-----",
            "[REDACTED:private-key]",
        ),
        (
            "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n"
            f"{PEM_BODY}\n-----END EC PRIVATE KEY-----",
            "[REDACTED:private-key]",
        ),
        # truncated key (head -3 id_rsa): body lines go, the following prose stays
        (
            f"-----BEGIN OPENSSH PRIVATE KEY-----\n{PEM_BODY}\nDone, 3 lines shown.",
            "[REDACTED:private-key]\nDone, 3 lines shown.",
        ),
        # assignments keep the key
        ("password=hunter2", "password=[REDACTED]"),
        ("PASSWORD=hunter2 next", "PASSWORD=[REDACTED] next"),
        ("passwd: s3cr3t!", "passwd: [REDACTED]"),
        ("secret = 'abc def'", "secret = '[REDACTED]'"),
        ('token="abc123"', 'token="[REDACTED]"'),
        ("api_key: abcdef123456", "api_key: [REDACTED]"),
        ("apikey=zzz", "apikey=[REDACTED]"),
        ("X-Api-Key: abc123xyz", "X-Api-Key: [REDACTED]"),
        ("export GITLAB_TOKEN=glpat-abcdef", "export GITLAB_TOKEN=[REDACTED]"),
        ("DB_PASSWORD=correcthorse", "DB_PASSWORD=[REDACTED]"),
        ("client_secret: verylongsecretvalue", "client_secret: [REDACTED]"),
        ('{"password": "hunter2", "user": "bob"}', '{"password": "[REDACTED]", "user": "bob"}'),
        ('{\\"access_token\\": \\"ya29abc\\"}', '{\\"access_token\\": \\"[REDACTED]\\"}'),
        ('password = "it\'s1"', 'password = "[REDACTED]"'),
        ("connect(password=pw1, user=u)", "connect(password=[REDACTED], user=u)"),
        (
            "https://x.io/cb?access_token=abc123&state=9",
            "https://x.io/cb?access_token=[REDACTED]&state=9",
        ),
        ("password='unterminated", "password='[REDACTED]"),
        ("SECRET=mysecret", "SECRET=[REDACTED]"),
        ("SECRET=abc.def", "SECRET=[REDACTED]"),
        ("token=resp.json", "token=[REDACTED]"),
        # headers and URLs
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [REDACTED]"),
        ('-H "authorization: basic dXNlcjpwYXNz"', '-H "authorization: basic [REDACTED]"'),
        (f"Bearer {body(30)}", "Bearer [REDACTED]"),
        ("postgres://bob:s3cret@db:5432/app", "postgres://bob:[REDACTED]@db:5432/app"),
        (
            "git clone https://me:tok3n@github.com/o/r",
            "git clone https://me:[REDACTED]@github.com/o/r",
        ),
    ],
)
def test_redacts(text: str, expected: str) -> None:
    assert redact(text) == expected


UNCHANGED = [
    "commit 3f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
    "id 123e4567-e89b-12d3-a456-426614174000",
    "the tokenizer splits words; token_count = 5; max_tokens: 4096",
    "Reset your password via the settings page.",
    "password",
    "Enter password:",
    "the password: it changed last week",
    "token=get_token()",
    "def f(token: str, password: Optional[str]) -> None:",
    "password: SecretStr",
    "TOKEN=$GITHUB_TOKEN",
    'curl -H "Authorization: Bearer $TOKEN"',
    "password=None",
    "api_key=api_key",
    "token=self.token",
    "self.token = token",
    "self._api_key = api_key",
    "password=config.db_password",
    "api_key=settings.OPENAI_API_KEY",
    "secret = os.environ['SECRET']",
    'if token == "abc":',
    "Token::new(x)",
    "let password: &str = read();",
    'os.environ.get("API_TOKEN", "")',
    "sk-learn-style-hyphenated-identifier",
    "https://github.com/org/repo and git@github.com:org/repo.git",
    "ssh://git@host:22/repo",
    "use a Bearer token in the header",
    "eyJhbGciOi alone is not a JWT",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----",
    "AKIA is a prefix; AKIASHORT too",
    "password=[REDACTED] and token: [REDACTED:github-token]",
    "",
]


@pytest.mark.parametrize("text", UNCHANGED)
def test_leaves_ordinary_text(text: str) -> None:
    assert redact(text) == text


def test_idempotent() -> None:
    text = "\n".join(
        [
            SLACK_BOT,
            f"password={GH_CLASSIC}",
            f"Authorization: Bearer {JWT}",
            f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----",
            "postgres://u:p4ss@h/db",
            f'{{"token": "{OPENAI}"}}',
        ]
    )
    once = redact(text)
    assert redact(once) == once
    for secret in (SLACK_BOT, GH_CLASSIC, JWT, PEM_BODY, "p4ss", OPENAI):
        assert secret not in once


def test_multiple_secrets_in_one_text() -> None:
    text = f"a {GH_CLASSIC} b {AWS_ID} c {GOOGLE} d"
    assert redact(text) == (
        "a [REDACTED:github-token] b [REDACTED:aws-access-key-id] c [REDACTED:google-api-key] d"
    )


#: name -> (prefix, repeated unit, count): the hostile text is ``prefix + unit * count``.
PATHOLOGICAL = {
    "hyphen run": ("", "a-", 500_000),
    "dot run": ("", "a.", 500_000),
    "assignments": ("", "password=", 110_000),
    "quotes": ("", 'password="', 100_000),
    "keyword spaces": ("", "token" + " " * 1000, 1000),
    "pem begins": ("", "-----BEGIN RSA PRIVATE KEY-----\n", 30_000),
    "pem body": ("-----BEGIN PRIVATE KEY-----", "\nQUFB", 200_000),
    "jwt prefix": ("eyJ", "a", 1_000_000),
    "jwt parts": ("", "eyJabcdef.", 100_000),
    "url userinfo": ("http://", "a:", 500_000),
    "schemes": ("", "a://", 250_000),
    "openai prefix": ("", "sk-", 330_000),
    "auth headers": ("", "Authorization: Bearer ", 45_000),
    "github prefix": ("", "ghp_", 250_000),
    "plain": ("", "x", 1_000_000),
}


@pytest.mark.parametrize("name", list(PATHOLOGICAL))
def test_pathological_input_is_linear(name: str) -> None:
    prefix, unit, count = PATHOLOGICAL[name]
    assert_linear(redact, lambda n: prefix + unit * n, count // SCALE, what=name)


def test_ordinary_megabyte_is_linear_and_untouched() -> None:
    line = "INFO 2024-01-01 worker=3 processed item 8f14e45f in 12ms (token_count=41)\n"
    text = line * (1_000_000 // len(line))
    assert redact(text) == text
    assert_linear(redact, lambda n: line * n, 1_000_000 // len(line) // SCALE)
