"""Turning every way agents.yaml can be wrong into one readable line each.

Split from :mod:`bridge.config.model` so the schema stays readable. pydantic's own messages ("Input
should be a valid string", locations as tuples) suit developers, not someone fixing a YAML file
while the fleet is down; the design asks for one line per problem naming the file, the agent and
the field, in file order, with every problem reported at once so one edit can fix them all.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Generic, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from bridge.errors import AgentbridgeError

#: A location inside the parsed YAML: mapping keys and list indices, outermost first.
Loc = tuple[str | int, ...]

#: Sort position for things the file does not contain (a missing field): after what it does.
_END = 1 << 30


class ConfigError(AgentbridgeError):
    """A config file that cannot be used, with every problem found in it, one line each.

    Callers print ``errors`` line by line (or ``str(err)``), so each line already carries the
    file name; nothing needs to be prefixed again.
    """

    def __init__(self, path: Path, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.path = path
        self.errors = errors


class _DuplicateKey(yaml.MarkedYAMLError):
    """A key given twice in one mapping: PyYAML silently keeps the last, which hides typos."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (merge keys ``<<`` may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise _DuplicateKey(
                    problem=f"duplicate key {key!r} (first at line {seen[key] + 1})",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, path: Path, display: str) -> Any:
    """Parse YAML, turning syntax errors into a ``file: line L, column C: ...`` ConfigError."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        where = ""
        if exc.problem_mark is not None:
            where = f"line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}: "
        problem = exc.problem or "syntax error"
        what = problem if isinstance(exc, _DuplicateKey) else f"invalid YAML: {problem}"
        mark = exc.context_mark
        if exc.context and mark is not None and mark.line != getattr(exc.problem_mark, "line", -1):
            what += f" ({exc.context} at line {mark.line + 1}, column {mark.column + 1})"
        raise ConfigError(path, [f"{display}: {where}{what}"]) from exc
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML's text spans lines
        before = text[: exc.position]
        where = f"line {before.count(chr(10)) + 1}, column {exc.position - before.rfind(chr(10))}"
        what = f"character {exc.character!r} is not allowed in YAML"
        if isinstance(exc.character, int):
            what = f"character #x{exc.character:04x} is not allowed in YAML"
        raise ConfigError(path, [f"{display}: {where}: invalid YAML: {what}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"{display}: invalid YAML: {' '.join(str(exc).split())}"]) from exc
    except RecursionError as exc:  # ``[[[[...`` thousands deep: no config nests like that
        raise ConfigError(path, [f"{display}: invalid YAML: nested too deeply"]) from exc


def describe_value(value: Any) -> str:
    """A short YAML-flavoured rendering of a bad value for 'got ...' (never a whole mapping)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unknown_key(key: Any, known: Sequence[str]) -> str:
    """``unknown key 'chanel' (did you mean 'channel'?)`` - typos are the commonest mistake."""
    close = difflib.get_close_matches(str(key), list(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {str(key)!r}{hint}"


def format_field(loc: Sequence[str | int]) -> str:
    """``('schedules', 0, 'cron')`` -> ``schedules[0].cron``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else ("." if text else "") + str(part)
    return text


def format_line(display: str, where: str | None, field: Sequence[str | int], message: str) -> str:
    """Assemble ``file: where: field: message``; a bare-file problem says ``top level``."""
    parts = [display]
    if where:
        parts.append(where)
    if field:
        parts.append(format_field(field))
    if len(parts) == 1:
        parts.append("top level")
    return ": ".join([*parts, message])


def position(raw: Any, loc: Loc) -> tuple[int, ...]:
    """Where ``loc`` sits in the parsed file, as a sort key: errors are reported in file order.

    Mappings keep YAML order, so a key's index among its siblings orders it like its line does.
    """
    out: list[int] = []
    current = raw
    for part in loc:
        if isinstance(current, dict) and part in current:
            out.append(list(current).index(part))
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            out.append(part)
            current = current[part]
        else:
            out.append(_END)
            break
    return tuple(out)


def _strip(tp: Any) -> Any:
    """Peel ``Annotated[...]`` and ``X | None`` down to the interesting type."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class that validated the mapping at ``loc`` (to list its keys as hints)."""
    tp: Any = root
    for part in loc:
        tp = _strip(tp)
        origin = get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(part, str) or part not in tp.model_fields:
                return None
            tp = tp.model_fields[part].annotation
        elif origin in (list, tuple):
            tp = get_args(tp)[0]
        elif origin is dict:
            tp = get_args(tp)[1]
        else:
            return None
    tp = _strip(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


#: pydantic error types -> what the value must be; ", got <value>" is appended.
_MUST_BE: dict[str, str] = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "string_too_short": "must not be empty",
}

_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def explain(err: ErrorDetails, keys_at: Callable[[Loc], Sequence[str]]) -> tuple[Loc, str]:
    """One pydantic error -> (location of the field it is about, human message).

    ``keys_at`` lists the keys valid at a location, for 'did you mean' hints on unknown keys.
    """
    loc: Loc = tuple(err["loc"])
    kind = err["type"]
    ctx = err.get("ctx") or {}
    is_key = bool(loc) and loc[-1] == "[key]"
    got = "" if is_key else f", got {describe_value(err.get('input'))}"
    if kind in ("extra_forbidden", "invalid_key"):
        return loc[:-1], unknown_key(loc[-1], keys_at(loc[:-1]))
    if kind == "missing":
        return loc, "required field is missing"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
    elif kind == "literal_error":
        message = f"must be {str(ctx.get('expected', '')).replace(chr(39), '')}{got}"
    elif kind in _BOUNDS:
        op, key = _BOUNDS[kind]
        limit = ctx.get(key)
        message = f"must be {op} {f'{limit:g}' if isinstance(limit, float) else limit}{got}"
    elif kind in _MUST_BE:
        message = _MUST_BE[kind] + ("" if kind == "string_too_short" else got)
    else:
        message = f"{err['msg']}{got}"
    if is_key:
        return loc[:-2], f"key {describe_value(loc[-2])}: {message}"
    return loc, message


M = TypeVar("M", bound=BaseModel)


def validate_document(
    text: str,
    root: type[M],
    agent_model: type[BaseModel],
    file: Path,
    shown: str,
    environ: Mapping[str, str],
) -> M:
    """Parse and validate a whole config document, or raise one ConfigError with every problem.

    Validators find the runner's environment and the config file's directory in the pydantic
    validation context as ``environ`` and ``base_dir``.
    """
    raw = load_yaml(text, file, shown)
    try:
        return _validate_raw(raw, file, shown, root, agent_model, environ)
    except RecursionError as exc:  # a YAML alias web or nesting too deep to walk
        raise ConfigError(file, [f"{shown}: top level: nested too deeply"]) from exc


def _validate_raw(
    raw: Any,
    file: Path,
    shown: str,
    root: type[M],
    agent_model: type[BaseModel],
    environ: Mapping[str, str],
) -> M:
    if raw is None:
        raise ConfigError(file, [f"{shown}: top level: file is empty (expected an 'agents' list)"])
    if not isinstance(raw, dict):
        msg = f"must be a mapping with an 'agents' list, got {describe_value(raw)}"
        raise ConfigError(file, [f"{shown}: top level: {msg}"])
    return _Run(raw, file, shown, root, agent_model).validate(environ)


class _Run(Generic[M]):
    """One validation: pre-checks pydantic cannot express well, pydantic, then file-order sort.

    ``defaults:`` is folded into every agent before pydantic sees it; a bad value that came from
    there is reported once against ``defaults``, not once per agent.
    """

    def __init__(
        self, raw: dict[Any, Any], file: Path, shown: str, root: type[M], agent: type[BaseModel]
    ) -> None:
        self.raw, self.file, self.shown, self.root = raw, file, shown, root
        self.agent_keys = [k for k in agent.model_fields if k != "slug"]
        self.problems: list[tuple[tuple[int, ...], str]] = []

    def keys_at(self, loc: Loc) -> list[str]:
        """Keys valid at a location, for hints (``path`` is set by the loader, not the file)."""
        if not loc:
            return [*(k for k in self.root.model_fields if k != "path"), "defaults"]
        model = model_at(self.root, loc)
        return list(model.model_fields) if model is not None else []

    def add(self, loc: Loc, where: str | None, field: Loc, message: str) -> None:
        line = format_line(self.shown, where, field, message)
        self.problems.append((position(self.raw, loc), line))

    def validate(self, environ: Mapping[str, str]) -> M:
        data = {k: v for k, v in self.raw.items() if k not in ("defaults", "path")}
        if "path" in self.raw:
            self.add(("path",), None, (), unknown_key("path", self.keys_at(())))
        defaults = self._defaults(self.raw.get("defaults"))
        agents = data.get("agents")
        if isinstance(agents, list):
            data["agents"] = [_merge(defaults, a) if isinstance(a, dict) else a for a in agents]
            self._duplicates(agents)
        context = {"environ": environ, "base_dir": self.file.absolute().parent}
        result: M | None = None
        try:
            result = self.root.model_validate(
                {**data, "path": self.file.absolute()}, context=context
            )
        except ValidationError as exc:
            for err in exc.errors():
                self._pydantic(err, defaults)
        if self.problems or result is None:
            ordered = sorted(self.problems, key=lambda p: p[0])
            raise ConfigError(self.file, list(dict.fromkeys(line for _, line in ordered)))
        return result

    def _defaults(self, defaults: Any) -> dict[str, Any]:
        """The usable keys of ``defaults:``; its values are checked through each agent."""
        if defaults is None:
            return {}
        if not isinstance(defaults, dict):
            message = f"must be a mapping, got {describe_value(defaults)}"
            self.add(("defaults",), "defaults", (), message)
            return {}
        usable: dict[str, Any] = {}
        for key, value in defaults.items():
            if key == "slug":
                self.add(("defaults", key), "defaults", (key,), "every agent sets its own slug")
            elif key not in self.agent_keys:
                self.add(("defaults", key), "defaults", (), unknown_key(key, self.agent_keys))
            else:
                usable[key] = value
        return usable

    def _duplicates(self, agents: list[Any]) -> None:
        first: dict[str, int] = {}
        for i, agent in enumerate(agents):
            slug = agent.get("slug") if isinstance(agent, dict) else None
            if isinstance(slug, str) and slug in first:
                message = f"duplicate slug {slug!r} (first at agents[{first[slug]}])"
                self.add(("agents", i, "slug"), f"agents[{i}]", (), message)
            elif isinstance(slug, str):
                first[slug] = i

    def _pydantic(self, err: ErrorDetails, defaults: dict[str, Any]) -> None:
        field, message = explain(err, self.keys_at)
        if len(field) < 2 or field[0] != "agents" or not isinstance(field[1], int):
            self.add(field, None, field, message)
            return
        index, rest = field[1], field[2:]
        agent = self.raw["agents"][index]
        if _inherited(err["type"], tuple(err["loc"])[2:], agent, defaults):
            self.add(("defaults", *rest), "defaults", rest, message)
            return
        label = f"agents[{index}]"
        if isinstance(agent, dict) and isinstance(agent.get("slug"), str):
            label += f" (slug {agent['slug']!r})"
        self.add(field, label, rest, message)


def _merge(defaults: dict[str, Any], agent: dict[Any, Any]) -> dict[Any, Any]:
    """Apply ``defaults:``: the agent's value wins; mappings (env, compaction) merge by key."""
    merged = dict(agent)
    for key, value in defaults.items():
        if key not in agent:
            merged[key] = value
        elif isinstance(value, dict) and isinstance(agent[key], dict):
            merged[key] = {**value, **agent[key]}
    return merged


def _inherited(kind: str, loc: Loc, agent: Any, defaults: dict[str, Any]) -> bool:
    """Whether the bad value at ``loc`` (inside one agent) came from ``defaults:``."""
    if not loc or not isinstance(agent, dict) or (kind == "missing" and len(loc) == 1):
        return False
    if loc[0] not in agent:
        return loc[0] in defaults
    own, shared = agent[loc[0]], defaults.get(str(loc[0]))
    if isinstance(own, dict) and isinstance(shared, dict) and len(loc) > 1:
        return loc[1] not in own and loc[1] in shared
    return False
