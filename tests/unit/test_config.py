"""agents.yaml loading: every bad file gives exact, one-line, file-ordered messages.

The messages are the config's user interface (printed by ``agentbridge validate`` and logged on a
refused hot reload), so the tests pin them verbatim.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bridge.config.model import (
    DEFAULT_NUDGE,
    AgentConfig,
    Config,
    ConfigError,
    crontab_trigger,
    load_config,
    parse_config,
    resolve_limit,
)

ENV = {"HOME": "/home/tester", "API_KEY": "sk-123", "REGION": "eu"}


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory holding agents.yaml next to two work trees, and the cwd of the test,
    so messages name the file as ``agents.yaml`` exactly as a user would pass it."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "afile").write_text("not a dir")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load(text: str, environ: dict[str, str] | None = None) -> Config:
    Path("agents.yaml").write_text(textwrap.dedent(text))
    return load_config("agents.yaml", ENV if environ is None else environ)


def errors(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, environ)
    assert str(info.value) == "\n".join(info.value.errors)
    assert info.value.path == Path("agents.yaml")
    return info.value.errors


def one_agent(extra: str) -> str:
    """A single agent 'x' in ./repo plus extra (agent-level) YAML lines."""
    return "agents:\n  - slug: x\n    workdir: repo\n" + textwrap.indent(
        textwrap.dedent(extra), "    "
    )


GOOD = """\
tmux_socket: fleet
launch_stagger_seconds: 0.5
allowed_users: [U0123ABCD]
restart: {max_failures: 3, window_minutes: 5, backoff_initial_seconds: 2,
          backoff_max_seconds: 30, crash_loop_retry_seconds: 120}
runtimes:
  claude: {bin: /opt/claude, model: opus, env: {TIER: "1", REGION: "${REGION}"}, args: [--a]}
  codex: {model: gpt-5}
agents:
  - slug: reviewer
    workdir: repo
    channel: "#reviews"
    env: {TIER: "2", KEY: "${API_KEY}"}
    args: [--b]
    allowed_users: [W0123ABCD]
    schedules:
      - {cron: "0 6 * * 1-5", prompt: "morning", timezone: Europe/Berlin}
    compaction: {enabled: true, soft: ["50%", "60%"], hard: "80%", escape_first: true}
    thinking: true
    allow_bots: true
  - slug: maint-2
    runtime: codex
    workdir: ~/
    channel: C0123456789
    enabled: false
    resume: false
  - slug: oneshot
    workdir: other
    ephemeral: true
    task: fix the flaky test
"""


def test_good_config_loads_and_round_trips(fleet: Path) -> None:
    home = fleet / "home"
    home.mkdir()
    config = load(GOOD, {**ENV, "HOME": str(home)})
    assert config.path == fleet / "agents.yaml"
    assert config.tmux_socket == "fleet"
    assert config.launch_stagger_seconds == 0.5
    assert config.restart.max_failures == 3 and config.restart.backoff_max_seconds == 30
    reviewer, maint, oneshot = config.agents
    assert reviewer.runtime == "claude" and reviewer.workdir == fleet / "repo"
    assert reviewer.env == {"TIER": "2", "KEY": "sk-123"}
    assert reviewer.schedules[0].timezone == "Europe/Berlin"
    assert reviewer.compaction.soft == ["50%", "60%"] and reviewer.compaction.hard == "80%"
    assert maint.workdir == home and maint.runtime == "codex" and not maint.resume
    assert oneshot.task == "fix the flaky test" and oneshot.compaction.nudge == DEFAULT_NUDGE
    assert oneshot.compaction.soft == [500_000, 600_000, 700_000]
    assert config.agent("maint-2") is maint and config.agent("nope") is None
    assert [a.slug for a in config.enabled_agents()] == ["reviewer", "oneshot"]

    dumped = config.model_dump(mode="json", exclude={"path"})
    Path("again.yaml").write_text(yaml.safe_dump(dumped, sort_keys=False))
    again = load_config("again.yaml", {})
    assert again.model_dump(exclude={"path"}) == config.model_dump(exclude={"path"})


def test_models_are_frozen(fleet: Path) -> None:
    config = load(one_agent(""))
    with pytest.raises(ValidationError):
        config.agents[0].slug = "y"


def test_runtime_defaults_merge(fleet: Path) -> None:
    config = load(GOOD, {**ENV, "HOME": str(fleet)})
    reviewer, maint, _ = config.agents
    assert reviewer.effective_bin(config) == "/opt/claude"
    assert reviewer.effective_model(config) == "opus"
    assert reviewer.effective_env(config) == {"TIER": "2", "REGION": "eu", "KEY": "sk-123"}
    assert reviewer.effective_args(config) == ["--a", "--b"]
    assert maint.effective_bin(config) is None  # the runtime's own default applies
    assert maint.effective_model(config) == "gpt-5"
    resolved = reviewer.resolved(config)
    assert resolved.args == ["--a", "--b"] and resolved.bin == "/opt/claude"
    assert reviewer.args == ["--b"]  # the original is untouched


def test_defaults_section_applies_to_every_agent(fleet: Path) -> None:
    config = load(
        """\
        defaults:
          workdir: repo
          env: {A: "1", B: "1"}
          compaction: {hard: 900000}
          thinking: true
        agents:
          - {slug: a, env: {B: "2"}, compaction: {soft: [800000]}}
          - {slug: b, workdir: other, thinking: false}
        """
    )
    a, b = config.agents
    assert a.workdir == fleet / "repo" and b.workdir == fleet / "other"
    assert a.env == {"A": "1", "B": "2"} and b.env == {"A": "1", "B": "1"}
    assert a.compaction.hard == 900_000 and a.compaction.soft == [800_000]
    assert a.thinking and not b.thinking


def test_bad_defaults_are_reported_once_against_defaults(fleet: Path) -> None:
    assert errors(
        """\
        defaults:
          slug: nope
          chanel: "#x"
          env: {A: "${MISSING}"}
        agents:
          - {slug: a, workdir: repo}
          - {slug: b, workdir: repo}
        """
    ) == [
        "agents.yaml: defaults: slug: every agent sets its own slug",
        "agents.yaml: defaults: unknown key 'chanel' (did you mean 'channel'?)",
        "agents.yaml: defaults: env.A: ${MISSING} is not set in the runner's environment",
    ]


def test_env_expansion(fleet: Path) -> None:
    config = load(one_agent('env: {A: "${API_KEY}-${REGION}", B: "$${API_KEY}", C: "$x"}'))
    assert config.agents[0].env == {"A": "sk-123-eu", "B": "${API_KEY}", "C": "$x"}


def test_env_unset_var_is_an_error_naming_it(fleet: Path) -> None:
    assert errors(one_agent('env: {TOKEN: "${NOT_SET}"}')) == [
        "agents.yaml: agents[0] (slug 'x'): env.TOKEN: ${NOT_SET} is not set in the runner's "
        "environment"
    ]


def test_env_names_and_values_are_checked(fleet: Path) -> None:
    assert errors(one_agent("env: {1X: a, PORT: 8080}")) == [
        "agents.yaml: agents[0] (slug 'x'): env: key '1X': must be a variable name "
        "(letters, digits, _; not starting with a digit)",
        "agents.yaml: agents[0] (slug 'x'): env.PORT: must be a string, got 8080",
    ]


def test_relative_workdir_is_anchored_at_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "work").mkdir()
    (tmp_path / "conf" / "agents.yaml").write_text(
        "agents: [{slug: a, workdir: ../work}, {slug: b, workdir: '${TOP}/work'}]"
    )
    monkeypatch.chdir("/")
    config = load_config(tmp_path / "conf" / "agents.yaml", {"TOP": str(tmp_path)})
    assert [a.workdir for a in config.agents] == [tmp_path / "work", tmp_path / "work"]
    assert all(a.workdir.is_absolute() for a in config.agents)


def test_parse_config_from_text(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    config = parse_config("agents: [{slug: a, workdir: w}]", tmp_path / "x.yaml", {})
    assert config.agents[0].workdir == tmp_path / "w"
    with pytest.raises(ConfigError) as info:
        parse_config("agents: [{slug: a}]", "conf/x.yaml", {})
    assert info.value.errors == [
        "conf/x.yaml: agents[0] (slug 'a'): workdir: required field is missing"
    ]


def test_spec_hash_tracks_launch_not_cosmetics(fleet: Path) -> None:
    base = load(one_agent("args: [--a]\nchannel: '#one'")).agents[0]
    same = load(one_agent("args: [--a]\nchannel: '#one'")).agents[0]
    channel = load(one_agent("args: [--a]\nchannel: '#two'\nthinking: true")).agents[0]
    args = load(one_agent("args: [--b]\nchannel: '#one'")).agents[0]
    env = load(one_agent("args: [--a]\nchannel: '#one'\nenv: {A: b}")).agents[0]
    assert base.spec_hash() == same.spec_hash() == channel.spec_hash()
    assert len({base.spec_hash(), args.spec_hash(), env.spec_hash()}) == 3


def test_spec_hash_with_config_sees_runtime_defaults(fleet: Path) -> None:
    one = load("runtimes: {claude: {args: [--a]}}\n" + one_agent(""))
    two = load("runtimes: {claude: {args: [--b]}}\n" + one_agent(""))
    assert one.agents[0].spec_hash() == two.agents[0].spec_hash()
    assert one.agents[0].spec_hash(one) != two.agents[0].spec_hash(two)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "agents:\n  - {slug: a, workdir: repo}\n  - {slug: b, workdir: repo}\n"
            "  - {slug: reviewer, workdir: repo, chanel: '#x'}\n",
            "agents.yaml: agents[2] (slug 'reviewer'): unknown key 'chanel' "
            "(did you mean 'channel'?)",
            id="unknown-agent-key",
        ),
        pytest.param(
            "agents:\n  - {slug: reviewer, workdir: repo}\n  - {slug: reviewer, workdir: repo}\n",
            "agents.yaml: agents[1]: duplicate slug 'reviewer' (first at agents[0])",
            id="duplicate-slug",
        ),
        pytest.param(
            "agents: [{slug: Bad_Slug, workdir: repo}]",
            "agents.yaml: agents[0] (slug 'Bad_Slug'): slug: must match [a-z0-9-], start with "
            "a letter or digit, at most 60 characters",
            id="bad-slug",
        ),
        pytest.param(
            f"agents: [{{slug: {'a' * 61}, workdir: repo}}]",
            f"agents.yaml: agents[0] (slug '{'a' * 61}'): slug: must match [a-z0-9-], start "
            "with a letter or digit, at most 60 characters",
            id="long-slug",
        ),
        pytest.param(
            "agents: [{slug: -x, workdir: repo}]",
            "agents.yaml: agents[0] (slug '-x'): slug: must match [a-z0-9-], start with "
            "a letter or digit, at most 60 characters",
            id="slug-leading-dash",
        ),
        pytest.param(
            "agents: [{slug: 7, workdir: repo}]",
            "agents.yaml: agents[0]: slug: must be a string, got 7",
            id="slug-not-a-string",
        ),
        pytest.param(
            one_agent("runtime: gpt"),
            "agents.yaml: agents[0] (slug 'x'): runtime: must be claude or codex, got 'gpt'",
            id="bad-runtime",
        ),
        pytest.param(
            "agents: [{slug: x, workdir: /nope}]",
            "agents.yaml: agents[0] (slug 'x'): workdir: /nope does not exist",
            id="workdir-missing",
        ),
        pytest.param(
            "agents: [{slug: x, workdir: /etc/hostname}]",
            "agents.yaml: agents[0] (slug 'x'): workdir: /etc/hostname is not a directory",
            id="workdir-not-a-dir",
        ),
        pytest.param(
            "agents: [{slug: x, workdir: '${NOWHERE}/w'}]",
            "agents.yaml: agents[0] (slug 'x'): workdir: ${NOWHERE} is not set in the "
            "runner's environment",
            id="workdir-unset-var",
        ),
        pytest.param(
            "agents: [{slug: x}]",
            "agents.yaml: agents[0] (slug 'x'): workdir: required field is missing",
            id="missing-workdir",
        ),
        pytest.param(
            "agents: [{workdir: repo}]",
            "agents.yaml: agents[0]: slug: required field is missing",
            id="missing-slug",
        ),
        pytest.param(
            one_agent("channel: general"),
            "agents.yaml: agents[0] (slug 'x'): channel: 'general' must be '#name' or a "
            "channel id like C0123456789",
            id="bad-channel",
        ),
        pytest.param(
            one_agent("schedules: [{cron: '61 * * * *', prompt: hi}]"),
            "agents.yaml: agents[0] (slug 'x'): schedules[0].cron: '61 * * * *' is not a "
            "valid cron expression (Error validating expression '61': the last value (61) is "
            "higher than the maximum value (59))",
            id="bad-cron",
        ),
        pytest.param(
            one_agent("schedules: [{cron: '0 6 1 * 1', prompt: hi}]"),
            "agents.yaml: agents[0] (slug 'x'): schedules[0].cron: '0 6 1 * 1' is not a valid "
            "cron expression (day of month and day of week are both set; use two schedules)",
            id="cron-day-and-weekday",
        ),
        pytest.param(
            one_agent("schedules: [{cron: '0 6 * *', prompt: hi}]"),
            "agents.yaml: agents[0] (slug 'x'): schedules[0].cron: '0 6 * *' is not a valid "
            "cron expression (expected 5 fields (minute hour day month weekday), got 4)",
            id="cron-four-fields",
        ),
        pytest.param(
            one_agent("schedules: [{cron: '0 6 * * *', prompt: '  ', timezone: Mars/Base}]"),
            "agents.yaml: agents[0] (slug 'x'): schedules[0].prompt: must not be empty\n"
            "agents.yaml: agents[0] (slug 'x'): schedules[0].timezone: 'Mars/Base' is not a "
            "known time zone (like Europe/Berlin)",
            id="schedule-prompt-and-timezone",
        ),
        pytest.param(
            one_agent("schedules: [{cron: '0 6 * * *', promt: hi}]"),
            "agents.yaml: agents[0] (slug 'x'): schedules[0]: unknown key 'promt' "
            "(did you mean 'prompt'?)\n"
            "agents.yaml: agents[0] (slug 'x'): schedules[0].prompt: required field is missing",
            id="schedule-typo",
        ),
        pytest.param(
            one_agent("compaction: {soft: [600000, 500000]}"),
            "agents.yaml: agents[0] (slug 'x'): compaction.soft: must be ascending, "
            "got 600000 before 500000",
            id="soft-not-ascending",
        ),
        pytest.param(
            one_agent("compaction: {soft: ['70%', '90%'], hard: '80%'}"),
            "agents.yaml: agents[0] (slug 'x'): compaction.soft: '90%' is not below hard ('80%')",
            id="soft-above-hard",
        ),
        pytest.param(
            one_agent("compaction: {hard: '120%', soft: [0]}"),
            "agents.yaml: agents[0] (slug 'x'): compaction.hard: must be a token count > 0 or a "
            "percentage like '70%', got '120%'\n"
            "agents.yaml: agents[0] (slug 'x'): compaction.soft[0]: must be a token count > 0 "
            "or a percentage like '70%', got 0",
            id="bad-token-limits",
        ),
        pytest.param(
            one_agent("ephemeral: true"),
            "agents.yaml: agents[0] (slug 'x'): task: required when ephemeral is true",
            id="ephemeral-without-task",
        ),
        pytest.param(
            one_agent("allowed_users: [bob]"),
            "agents.yaml: agents[0] (slug 'x'): allowed_users[0]: 'bob' must be a Slack user id "
            "like U0123456789",
            id="bad-user-id",
        ),
        pytest.param(
            one_agent("enabled: 'yes'\nargs: --fast\nmodel: 4"),
            "agents.yaml: agents[0] (slug 'x'): enabled: must be true or false, got 'yes'\n"
            "agents.yaml: agents[0] (slug 'x'): args: must be a list, got '--fast'\n"
            "agents.yaml: agents[0] (slug 'x'): model: must be a string, got 4",
            id="wrong-types",
        ),
        pytest.param(
            "agent: []\nagents: []\n",
            "agents.yaml: top level: unknown key 'agent' (did you mean 'agents'?)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            "tmux_socket: fleet\n",
            "agents.yaml: agents: required field is missing",
            id="missing-agents",
        ),
        pytest.param(
            "agents: {slug: x}\n",
            "agents.yaml: agents: must be a list, got a mapping",
            id="agents-not-a-list",
        ),
        pytest.param(
            "agents:\n  - reviewer\n",
            "agents.yaml: agents[0]: must be a mapping, got 'reviewer'",
            id="agent-not-a-mapping",
        ),
        pytest.param(
            "agents: []\nlaunch_stagger_seconds: -1\nrestart: {max_failure: 3}\n",
            "agents.yaml: launch_stagger_seconds: must be >= 0, got -1\n"
            "agents.yaml: restart: unknown key 'max_failure' (did you mean 'max_failures'?)",
            id="top-level-values",
        ),
        pytest.param(
            "agents: []\nrestart: {backoff_initial_seconds: 10, backoff_max_seconds: 5}\n",
            "agents.yaml: restart.backoff_max_seconds: must be >= backoff_initial_seconds "
            "(10.0), got 5.0",
            id="backoff-order",
        ),
        pytest.param(
            "agents: []\nruntimes: {gpt: {}, codex: {arg: [-x]}}\n",
            "agents.yaml: runtimes: key 'gpt': must be claude or codex\n"
            "agents.yaml: runtimes.codex: unknown key 'arg' (did you mean 'args'?)",
            id="bad-runtimes",
        ),
        pytest.param(
            "agents: []\ntmux_socket: /tmp/sock\nallowed_users: [U0AB, nobody]\n",
            "agents.yaml: tmux_socket: '/tmp/sock' must be a socket name (tmux -L), not a path\n"
            "agents.yaml: allowed_users[1]: 'nobody' must be a Slack user id like U0123456789",
            id="socket-and-users",
        ),
        pytest.param(
            "agents:\n  - slug: x\n    workdir: repo\n  bad: 1\n",
            "agents.yaml: line 4, column 3: invalid YAML: expected <block end>, but found '?' "
            "(while parsing a block collection at line 2, column 3)",
            id="yaml-syntax",
        ),
        pytest.param(
            "agents:\n  - slug: x\n    workdir: repo\n    slug: y\n",
            "agents.yaml: line 4, column 5: duplicate key 'slug' (first at line 2)",
            id="yaml-duplicate-key",
        ),
        pytest.param(
            "# nothing yet\n",
            "agents.yaml: top level: file is empty (expected an 'agents' list)",
            id="empty-file",
        ),
        pytest.param(
            "- slug: x\n",
            "agents.yaml: top level: must be a mapping with an 'agents' list, got a list",
            id="top-level-not-a-mapping",
        ),
    ],
)
def test_bad_config_message(fleet: Path, text: str, expected: str) -> None:
    assert errors(text) == expected.split("\n")


def test_all_errors_are_reported_in_file_order(fleet: Path) -> None:
    assert errors(
        """\
        agents:
          - slug: b
            workdir: /nope
            runtime: gpt
          - slug: a
            chanel: "#x"
            workdir: repo
          - slug: b
            workdir: repo
        tmux_socket: a/b
        """
    ) == [
        "agents.yaml: agents[0] (slug 'b'): workdir: /nope does not exist",
        "agents.yaml: agents[0] (slug 'b'): runtime: must be claude or codex, got 'gpt'",
        "agents.yaml: agents[1] (slug 'a'): unknown key 'chanel' (did you mean 'channel'?)",
        "agents.yaml: agents[2]: duplicate slug 'b' (first at agents[0])",
        "agents.yaml: tmux_socket: 'a/b' must be a socket name (tmux -L), not a path",
    ]


def test_path_is_shown_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "fleet.yaml").write_text("agents: [{slug: x, workdir: nope}]")
    with pytest.raises(ConfigError) as info:
        load_config("conf/fleet.yaml", {})
    assert info.value.errors == [
        f"conf/fleet.yaml: agents[0] (slug 'x'): workdir: {tmp_path}/conf/nope does not exist"
    ]


def test_unreadable_file(fleet: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("missing.yaml", {})
    assert info.value.errors == ["missing.yaml: cannot read: No such file or directory"]


def test_empty_lists_may_be_left_blank(fleet: Path) -> None:
    config = load("agents:\nallowed_users:\n")
    assert config.agents == [] and config.allowed_users == []
    agent = load(one_agent("args:\nenv:\nschedules:\ncompaction:\n")).agents[0]
    assert agent.args == [] and agent.env == {} and agent.schedules == []


def test_crontab_weekdays_mean_what_crontab_means() -> None:
    """APScheduler 3 counts weekdays from Monday = 0; crontab from Sunday = 0 (and 7)."""
    start = datetime(2025, 1, 1, tzinfo=UTC)  # a Wednesday

    def next_day(expr: str) -> str:
        fire = crontab_trigger(expr, "UTC").get_next_fire_time(None, start)
        return str(fire.strftime("%a"))

    assert next_day("0 9 * * 1") == "Mon"
    assert next_day("0 9 * * 0") == next_day("0 9 * * 7") == "Sun"
    assert next_day("0 9 * * 1-5") == "Wed"
    assert next_day("0 9 * * 5-7") == "Fri"
    assert next_day("0 9 * * sat") == "Sat"
    assert next_day("0 9 * * */3") == "Wed"  # Sun, Wed, Sat


def test_schedule_trigger_uses_its_timezone(fleet: Path) -> None:
    schedule = (
        load(one_agent("schedules: [{cron: '0 6 * * *', prompt: hi, timezone: Asia/Tokyo}]"))
        .agents[0]
        .schedules[0]
    )
    fire = schedule.trigger().get_next_fire_time(None, datetime(2025, 1, 1, tzinfo=UTC))
    assert fire.utcoffset().total_seconds() == 9 * 3600 and fire.hour == 6


def test_resolve_limit() -> None:
    assert resolve_limit(500_000, 1_000_000) == 500_000
    assert resolve_limit("70%", 200_000) == 140_000
    assert resolve_limit("62.5%", 1000) == 625


def test_programmatic_construction() -> None:
    agent = AgentConfig(slug="a", workdir=Path("/"))
    assert agent.runtime == "claude" and agent.workdir == Path("/")
    config = Config(agents=[agent])
    assert config.agent("a") is agent and config.restart.max_failures == 5
