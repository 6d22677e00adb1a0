"""The CLI pins live in one place (``bridge/devtools/clis.py``) and everything else agrees with it.

- every pin is a version the runtimes list as tested (``runtimes/tested.py``), and so is every
  recorded fixture;
- the container installs exactly the pins, by running ``clis.py --print-pins`` (executed here
  with a fake ``npm``);
- README, docs, deploy files and benches name no other version of the pinned packages;
- ``clis`` keys each install by package and version (a new pin installs next to the old one),
  and its ``latest`` channel (``tests/run.sh --latest-clis``) resolves with ``npm view``;
- the pane lines docs/real-cli-recipe.md quotes for a tool call are what the pinned CLIs draw
  (the one integration test here: it drives the real CLIs).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.devtools import clis
from bridge.devtools.clis import PINS, Pin
from runtimes import get_runtime, tested
from runtimes.tested import TESTED, is_tested, normalize, version_key
from tests.conftest import Fleet, wait_until

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "deploy" / "Containerfile"
RECIPE = REPO / "docs" / "real-cli-recipe.md"
README = REPO / "README.md"
#: Recorded CLI output the parsers are tested on (tests/fixtures/<cli>-<version>/ and
#: tests/golden/<cli>-<version>.json); recorded files, never renamed.
RECORDED = ("claude-2.1.328", "codex-0.169.0", "codex-0.136.0")
#: Recorded payloads and panes without a golden mirror file (tests/unit/test_cli_releases.py).
RECORDED_PAYLOADS = ("claude-2.1.337", "codex-0.171.0")

#: The pane lines docs/real-cli-recipe.md quotes for ``RUN: echo hi``, per pin; checked on the real
#: CLIs by test_pinned_clis_draw_the_pane_lines_the_recipe_quotes.
PANE_LINES: dict[str, tuple[str, ...]] = {
    "claude": ("Ran 1 shell command", "● ran: echo hi -> hi"),
    "claude332": ("Ran 1 shell command", "● ran: echo hi -> hi"),
    "codex": ("• Ran echo hi", "└ hi", "• ran: echo hi -> hi"),
    "codex136": ("• Ran echo hi", "└ hi", "• ran: echo hi -> hi"),
}

_INSTALL_SPEC = re.compile(r"(@anthropic-ai/claude-code|@openai/codex)@(\d+\.\d+\.\d+[\w.-]*)")


@pytest.fixture(autouse=True)
def _pinned_channel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test here sees the default channel and a cache dir of its own unless it says so."""
    monkeypatch.delenv(clis.CHANNEL_ENV, raising=False)
    monkeypatch.delenv(clis.LATEST_ENV, raising=False)
    monkeypatch.setenv(clis.CACHE_ENV, str(tmp_path / "cli-cache"))
    clis.latest_version.cache_clear()
    yield
    clis.latest_version.cache_clear()


# -- pins and the tested set ---------------------------------------------------------------------


def test_every_pin_is_a_tested_version() -> None:
    for pin in PINS.values():
        assert is_tested(pin.runtime, pin.version), (
            f"{pin.name} is pinned to {pin.version}, which runtimes/tested.py does not list "
            f"for {pin.runtime}"
        )


def test_the_followed_pins_are_the_newest_tested_versions() -> None:
    """A version listed as tested but newer than the pin was never run by the suite."""
    for runtime in TESTED:
        followed = [p for p in PINS.values() if p.runtime == runtime and p.follows_latest]
        assert len(followed) == 1, f"one pin per runtime follows the releases, not {followed}"
        newest = tested.tested_versions(runtime)[-1]
        assert followed[0].version == newest, (
            f"{runtime}: pinned {followed[0].version}, newest tested {newest}"
        )


def test_every_tested_runtime_exists() -> None:
    for runtime in TESTED:
        get_runtime(runtime)


def test_recorded_fixtures_are_kept_and_are_tested_versions() -> None:
    fixtures = {p.name for p in (REPO / "tests" / "fixtures").iterdir() if p.is_dir()}
    golden = {p.stem for p in (REPO / "tests" / "golden").glob("*.json")}
    for name in RECORDED_PAYLOADS:
        assert name in fixtures, f"tests/fixtures/{name}/ is gone"
    for name in RECORDED:
        assert name in fixtures, f"tests/fixtures/{name}/ is gone"
        assert name in golden, f"tests/golden/{name}.json is gone"
    for name in fixtures | golden:
        runtime, _, version = name.partition("-")
        assert is_tested(runtime, version), f"{name} is recorded but {version} is not tested"


@pytest.mark.parametrize(
    ("runtime", "version", "expected"),
    [
        ("claude", "2.1.332", True),
        ("claude", "2.1.337 (Claude Code)", True),
        ("claude", "2.1.336", False),
        ("claude", "2.1.328 (Claude Code)", True),
        ("codex", "codex-cli 0.171.0", True),
        ("codex", "v0.136.0", True),
        ("codex", "0.170.0", False),
        ("codex", "0.171.0-alpha.1", False),
        ("claude", "0.171.0", False),
        ("gemini", "2.1.332", False),
        ("codex", "", False),
        ("codex", "codex-cli", False),
    ],
)
def test_is_tested(runtime: str, version: str, expected: bool) -> None:
    assert is_tested(runtime, version) is expected


def test_normalize_and_order() -> None:
    assert tested.tested_versions("codex") == sorted(TESTED["codex"], key=version_key)
    assert tested.tested_versions("gemini") == []
    assert normalize("2.1.332 (Claude Code)") == "2.1.332"
    assert normalize("nothing here") is None
    assert version_key("0.99.0") < version_key("0.136.0") < version_key("0.171.0-alpha.1")


def test_tested_module_imports_nothing_from_bridge() -> None:
    """doctor imports it; it must stay a leaf of the runtimes package."""
    source = (REPO / "runtimes" / "tested.py").read_text(encoding="utf-8")
    assert not re.search(r"^\s*(from|import)\s+(bridge|runtimes)\b", source, re.M)


# -- the container installs the pins -------------------------------------------------------------


def _instructions(path: Path) -> list[str]:
    """The Containerfile's instructions, comments dropped and continuation lines joined."""
    out: list[str] = []
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            out.append(current)
            current = ""
    return out


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_containerfile_names_no_cli_version_of_its_own() -> None:
    code = "\n".join(_instructions(CONTAINERFILE))
    assert not _INSTALL_SPEC.search(code), "the Containerfile must take the CLI versions from PINS"


def test_containerfile_installs_exactly_the_pins(tmp_path: Path) -> None:
    """Run the Containerfile's install step with fake npm/claude/codex and the real clis.py."""
    instructions = _instructions(CONTAINERFILE)
    copy = next(i for i in instructions if re.match(r"COPY\s+bridge/devtools/clis\.py\s", i))
    dest = copy.split()[-1]
    run = next(i for i in instructions if i.startswith("RUN ") and dest in i)
    # Alone in a directory: clis.py must run without the rest of the repo, as in the build.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(REPO / "bridge" / "devtools" / "clis.py", alone / "clis.py")
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    log = tmp_path / "npm.log"
    _script(fakebin / "npm", f'echo "$*" >> {log}\n')
    _script(fakebin / "claude", "echo '9.9.9 (Claude Code)'\n")
    _script(fakebin / "codex", "echo 'codex-cli 9.9.9'\n")
    (fakebin / "python3").symlink_to(sys.executable)
    env = {
        "PATH": f"{fakebin}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AGENTBRIDGE_CLI_CACHE": str(tmp_path / "cache"),
    }
    body = run[len("RUN ") :].replace(dest, str(alone / "clis.py"))
    result = subprocess.run(
        ["sh", "-ec", body], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = log.read_text().splitlines()
    installs = [c.split() for c in calls if c.startswith("install")]
    assert len(installs) == 1, calls
    specs = [a for a in installs[0] if not a.startswith("-") and a != "install"]
    assert specs == [PINS["claude"].spec, PINS["codex"].spec]


# -- the docs name only the pins -----------------------------------------------------------------


def _doc_files() -> list[Path]:
    files = [README, *sorted((REPO / "docs").rglob("*.md"))]
    files += sorted(p for p in (REPO / "deploy").rglob("*") if p.is_file())
    files += sorted((REPO / "bench").rglob("*.py"))
    return files


def test_docs_deploy_and_benches_name_only_pinned_versions() -> None:
    allowed: dict[str, set[str]] = {}
    for pin in PINS.values():
        allowed.setdefault(pin.package, set()).add(pin.version)
    stale = [
        f"{path.relative_to(REPO)}: {m.group(0)}"
        for path in _doc_files()
        for m in _INSTALL_SPEC.finditer(path.read_text(encoding="utf-8", errors="replace"))
        if m.group(2) not in allowed[m.group(1)]
    ]
    assert not stale, "versions that are not pins (see bridge/devtools/clis.py):\n" + "\n".join(
        stale
    )


def test_recipe_names_the_current_pins_and_the_checked_pane_lines() -> None:
    text = RECIPE.read_text(encoding="utf-8")
    for pin in PINS.values():
        assert f"**{pin.version}**" in text, f"docs/real-cli-recipe.md does not name {pin.spec}"
    for lines in PANE_LINES.values():
        for line in lines:
            assert f"`{line}`" in text, f"docs/real-cli-recipe.md does not quote `{line}`"
    assert "Bash(echo hi)" not in text, "no pinned Claude draws a tool call as Bash(...)"


def test_latest_clis_mode_is_documented_and_wired() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Testing against the newest CLI releases", 1)
    assert len(section) == 2, "README has no 'Testing against the newest CLI releases' section"
    assert "bash tests/run.sh --latest-clis" in section[1]
    assert "--latest-clis" in RECIPE.read_text(encoding="utf-8")
    run_sh = (REPO / "tests" / "run.sh").read_text(encoding="utf-8")
    assert '"--latest-clis"' in run_sh and f"{clis.CHANNEL_ENV}=latest" in run_sh
    assert "--print-latest" in run_sh and clis.LATEST_ENV in run_sh


# -- clis: prefixes per version, channels ---------------------------------------------------------


@pytest.fixture
def fake_npm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ``npm`` on PATH that answers ``view`` with $FAKE_LATEST and fakes ``install --prefix``.

    Returns its call log (one JSON argv a line)."""
    log = tmp_path / "npm-calls.jsonl"
    fakebin = tmp_path / "fakebin"
    fakebin.mkdir()
    npm = fakebin / "npm"
    npm.write_text(
        f"""#!{sys.executable}
import json, os, sys
from pathlib import Path
args = sys.argv[1:]
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[0] == "view":
    latest = os.environ.get("FAKE_LATEST")
    if not latest:
        sys.exit("npm error code E404")
    print(latest)
elif args[0] == "install":
    prefix = Path(args[args.index("--prefix") + 1])
    package, _, version = args[-1].rpartition("@")
    pkg = prefix / "node_modules" / package
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "package.json").write_text(json.dumps({{"name": package, "version": version}}))
    binary = prefix / "node_modules" / ".bin" / package.rsplit("/", 1)[-1].split("-")[0]
    binary.parent.mkdir(parents=True, exist_ok=True)
    binary.write_text("#!/bin/sh\\necho " + version + "\\n")
    binary.chmod(0o755)
"""
    )
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fakebin}{os.pathsep}{os.environ['PATH']}")
    return log


def _calls(log: Path) -> list[list[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_each_version_gets_its_own_prefix_and_a_new_pin_reinstalls(
    fake_npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = clis.ensure("codex")
    assert first == clis.cache_dir() / "codex-0.171.0" / "node_modules" / ".bin" / "codex"
    assert clis.ensure("codex") == first  # installed: npm is not asked again
    assert [c[0] for c in _calls(fake_npm)] == ["install"]
    old = clis.ensure("codex136")
    assert old.parent.parent.parent.name == "codex-0.136.0"

    bumped = Pin("codex", "codex", "@openai/codex", "0.172.0", "codex")
    monkeypatch.setitem(clis.PINS, "codex", bumped)
    second = clis.ensure("codex")
    assert second == clis.cache_dir() / "codex-0.172.0" / "node_modules" / ".bin" / "codex"
    assert [c[-1] for c in _calls(fake_npm)] == [
        "@openai/codex@0.171.0",
        "@openai/codex@0.136.0",
        "@openai/codex@0.172.0",
    ]
    assert first.exists() and old.exists(), "an older install is left alone"


def test_a_stale_install_in_the_prefix_is_replaced(fake_npm: Path) -> None:
    pin = clis.resolve("claude")
    manifest = clis.prefix(pin) / "node_modules" / pin.package / "package.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"version": "2.1.300"}))
    clis.bin_path(pin).parent.mkdir(parents=True)
    clis.bin_path(pin).write_text("")
    clis.ensure("claude")
    assert clis.installed_version(pin) == pin.version
    assert [c[-1] for c in _calls(fake_npm)] == [pin.spec]


def test_latest_channel_resolves_with_npm_view(
    fake_npm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(clis.CHANNEL_ENV, "latest")
    monkeypatch.setenv("FAKE_LATEST", "9.8.7")
    assert clis.resolve("claude").version == "9.8.7"
    assert clis.resolve("codex").version == "9.8.7"
    assert clis.resolve("codex136").version == "0.136.0", "0.136.0 stays for the old shape"
    path = clis.ensure("claude")
    assert path.parent.parent.parent.name == "claude-code-9.8.7"
    views = [c for c in _calls(fake_npm) if c[0] == "view"]
    assert views == [
        ["view", "@anthropic-ai/claude-code", "version"],
        ["view", "@openai/codex", "version"],
    ], "one lookup per package and process"

    assert clis.main(["--print-latest"]) == 0
    assert capsys.readouterr().out.split() == [
        "@anthropic-ai/claude-code@9.8.7",
        "@openai/codex@9.8.7",
    ]


def test_latest_versions_resolved_once_are_handed_on(
    fake_npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """tests/run.sh resolves once; the test workers read the answer instead of asking npm."""
    monkeypatch.setenv(clis.CHANNEL_ENV, "latest")
    monkeypatch.setenv(clis.LATEST_ENV, "@anthropic-ai/claude-code@2.1.400 @openai/codex@0.180.0 ")
    assert clis.resolve("claude").spec == "@anthropic-ai/claude-code@2.1.400"
    assert clis.resolve("codex").spec == "@openai/codex@0.180.0"
    assert clis.resolve("codex136").spec == "@openai/codex@0.136.0"
    assert _calls(fake_npm) == []


def test_latest_channel_fails_loudly_without_the_registry(
    fake_npm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(clis.CHANNEL_ENV, "latest")
    with pytest.raises(RuntimeError, match="npm view @anthropic-ai/claude-code version"):
        clis.resolve("claude")


def test_pinned_channel_never_asks_the_registry(fake_npm: Path) -> None:
    assert [clis.resolve(n).version for n in PINS] == [p.version for p in PINS.values()]
    assert _calls(fake_npm) == []


def test_an_unknown_channel_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clis.CHANNEL_ENV, "nightly")
    with pytest.raises(ValueError, match="pinned, latest"):
        clis.resolve("claude")


def test_print_pins(capsys: pytest.CaptureFixture[str]) -> None:
    assert clis.main(["--print-pins"]) == 0
    assert capsys.readouterr().out.split() == [p.spec for p in PINS.values()]
    assert clis.main(["--print-pins", "codex"]) == 0
    assert capsys.readouterr().out.split() == [PINS["codex"].spec]
    with pytest.raises(SystemExit):
        clis.main(["--print-pins", "gemini"])


# -- the recipe's pane lines, on the real CLIs -----------------------------------------------------


@pytest.mark.integration
def test_pinned_clis_draw_the_pane_lines_the_recipe_quotes(
    fleet: Fleet, cli_bins: dict[str, Path]
) -> None:
    """On whatever channel the run uses (``--latest-clis`` included): a drifted TUI fails here."""
    # cli_bins (session-scoped) came from the run's own cache and channel, before the autouse
    # fixture above isolated both for the unit tests.
    for name, bin_ in cli_bins.items():
        pin = PINS[name]
        manifest = bin_.parents[1] / pin.package / "package.json"
        installed = json.loads(manifest.read_text())["version"]
        reported = get_runtime(pin.runtime).probe_version(str(bin_))
        assert normalize(reported) == installed, f"{bin_} says {reported}, npm put {installed}"
        print(f"{name}: {pin.package}@{installed}")
    for name in PANE_LINES:
        fleet.agent(name, PINS[name].runtime, name)
    fleet.write_config()
    fleet.start_runner()
    for name in PANE_LINES:
        runtime = get_runtime(PINS[name].runtime)
        wait_until(
            lambda r=runtime, n=name: r.is_ready_screen(fleet.capture(n)), 90, f"{name} ready"
        )
        fleet.cli("send", name, "RUN: echo hi", "--config", str(fleet.config_path))
    for name, lines in PANE_LINES.items():

        def pane(n: str = name) -> str:
            return fleet.tmux("capture-pane", "-p", "-S", "-300", "-t", f"={n}:")

        wait_until(
            lambda ls=lines, p=pane: all(line in p() for line in ls),
            90,
            f"{name}: {lines} on screen",
        )
