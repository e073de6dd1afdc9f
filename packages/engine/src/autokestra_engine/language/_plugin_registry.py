"""Plugins: ``plugin.yaml`` manifests, their discovery on the plugin path, and the built-ins.

A plugin is a folder holding a ``plugin.yaml`` (DESIGN.md §5). Plugin path folders *contain*
plugin folders (a plugin path entry that is itself a plugin folder is accepted too). The
built-in ``core`` plugins ship inside this package and are always found first; the
``core`` namespace is reserved for them. When two folders define the same plugin the one
found first wins (``--plugin-path``, then ``AUTOKESTRA_PLUGIN_PATH``, config, ``./plugins``).

In a manifest ``command`` an element that is exactly ``{python}`` becomes the engine's own
interpreter (``sys.executable``), for every plugin; a program path containing a ``/`` is
relative to the plugin folder; a bare program name is looked up on ``PATH``.

    registry = PluginRegistry.discover([Path("plugins")])
    action = registry.action("core/shell.run")
    action.command   # ('/usr/bin/python3', '-I', '-S', '.../shell/shell.py')
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autokestra_obs_schema import parse_duration_ms

from ._inputs import canonical_type, type_error
from ._model import ActionSpec, InputDecl
from ._problems import PluginError, UnknownAction

MANIFEST = "plugin.yaml"
#: The engine's own plugins, shipped in the package root (``autokestra_engine/builtin_plugins``).
BUILTIN_DIR = Path(__file__).parent.parent / "builtin_plugins"
BUILTIN_NAMESPACE = "core"
PYTHON_PLACEHOLDER = "{python}"
TYPE_PATTERN = re.compile(r"^([a-z0-9-]+)/([a-z0-9-]+)\.([a-z0-9-]+)$")
_NAME = re.compile(r"^[a-z0-9-]+$")
_INPUT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MANIFEST_KEYS = {"namespace", "name", "version", "description", "actions"}
_ACTION_KEYS = {"description", "command", "timeout", "inputs", "outputs"}
_INPUT_KEYS = {"type", "required", "default", "secret", "description", "enum"}
_OUTPUT_KEYS = {"type", "description"}


@dataclass(frozen=True)
class PluginInfo:
    """A loaded plugin: identity, folder and its actions by name."""

    namespace: str
    name: str
    version: str
    description: str
    plugin_dir: Path
    actions: dict[str, ActionSpec]
    builtin: bool = False

    @property
    def key(self) -> str:
        """``namespace/name``, the part of a task type before the dot."""
        return f"{self.namespace}/{self.name}"


class _Checker:
    """Collects manifest problems with their paths instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def unknown_keys(self, data: dict[Any, Any], allowed: set[str], path: str) -> None:
        for key in data:
            if key not in allowed:
                where = f"{path}.{key}" if path else str(key)
                self.add(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _command(raw: Any, plugin_dir: Path, path: str, check: _Checker) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw or not all(isinstance(a, str) and a for a in raw):
        check.add(path, "must be a non-empty list of non-empty strings")
        return ()
    argv = [sys.executable if arg == PYTHON_PLACEHOLDER else arg for arg in raw]
    program = argv[0]
    if "/" in program and not Path(program).is_absolute():
        argv[0] = str(plugin_dir / program)
    # Script arguments that name files of the plugin folder are made absolute too, so the
    # command means the same thing whatever the working directory.
    for index in range(1, len(argv)):
        if not argv[index].startswith("-") and (plugin_dir / argv[index]).is_file():
            argv[index] = str(plugin_dir / argv[index])
    return tuple(argv)


def _input_decl(name: str, raw: Any, path: str, check: _Checker) -> InputDecl | None:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        check.add(path, "must be a mapping of type, required, default, secret, description")
        return None
    check.unknown_keys(raw, _INPUT_KEYS, path)
    type_name = canonical_type(str(raw.get("type", "string")))
    if type_name is None:
        check.add(f"{path}.type", f"unknown type {raw.get('type')!r}")
        type_name = "any"
    for flag in ("required", "secret"):
        if flag in raw and not isinstance(raw[flag], bool):
            check.add(f"{path}.{flag}", "must be true or false")
    default = raw.get("default")
    if default is not None and (problem := type_error(default, type_name)):
        check.add(f"{path}.default", problem)
    enum = raw.get("enum")
    if enum is not None and not isinstance(enum, list):
        check.add(f"{path}.enum", "must be a list of allowed values")
        enum = None
    description = raw.get("description", "")
    return InputDecl(
        type=type_name,
        required=raw.get("required") is True,
        default=default,
        secret=raw.get("secret") is True,
        description=str(description or ""),
        enum=tuple(enum) if enum is not None else None,
    )


def _action_timeout(raw: Any, path: str, check: _Checker) -> int | None:
    if raw is None:
        return None
    try:
        return parse_duration_ms(str(raw))
    except ValueError as exc:
        check.add(f"{path}.timeout", f"invalid duration: {exc}")
        return None


def _action_inputs(raw: Any, path: str, check: _Checker) -> dict[str, InputDecl]:
    inputs: dict[str, InputDecl] = {}
    raw = raw or {}
    if not isinstance(raw, dict):
        check.add(f"{path}.inputs", "must be a mapping of input name to declaration")
        return inputs
    for input_name, decl_raw in raw.items():
        input_path = f"{path}.inputs.{input_name}"
        if not isinstance(input_name, str) or not _INPUT_NAME.match(input_name):
            check.add(input_path, "input names use letters, digits, '_' and '-' only")
            continue
        decl = _input_decl(input_name, decl_raw, input_path, check)
        if decl is not None:
            inputs[input_name] = decl
    return inputs


def _action_outputs(raw: Any, path: str, check: _Checker) -> dict[str, str]:
    outputs: dict[str, str] = {}
    raw = raw or {}
    if not isinstance(raw, dict):
        check.add(f"{path}.outputs", "must be a mapping of output name to declaration")
        return outputs
    for output_name, out in raw.items():
        if isinstance(out, dict):
            check.unknown_keys(out, _OUTPUT_KEYS, f"{path}.outputs.{output_name}")
            outputs[str(output_name)] = str(out.get("type", "any"))
        else:
            outputs[str(output_name)] = "any"
    return outputs


def _read_manifest(manifest: Path) -> dict[Any, Any]:
    """The manifest's top-level mapping; a file that is unreadable or not one raises."""
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PluginError(f"{manifest}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.line + 1}:{mark.column + 1}: " if mark is not None else ""
        raise PluginError(f"{manifest}: {where}{getattr(exc, 'problem', None) or exc}") from exc
    if not isinstance(data, dict):
        raise PluginError(f"{manifest}: expected a mapping at the top level")
    return data


def load_manifest(plugin_dir: Path, *, builtin: bool = False) -> PluginInfo:
    """Load and check one plugin folder's ``plugin.yaml``.

    Args:
        plugin_dir: the plugin folder.
        builtin: True for the engine's own plugins (may use the ``core`` namespace).

    Returns:
        The plugin with its actions.

    Raises:
        PluginError: unreadable or invalid manifest; the message lists every problem.
    """
    manifest = plugin_dir / MANIFEST
    data = _read_manifest(manifest)
    check = _Checker()
    check.unknown_keys(data, _MANIFEST_KEYS, "")
    namespace, name = data.get("namespace"), data.get("name")
    for key, value in (("namespace", namespace), ("name", name)):
        if not isinstance(value, str) or not _NAME.match(value):
            check.add(key, "required, lowercase letters, digits and '-' only")
    if namespace == BUILTIN_NAMESPACE and not builtin:
        check.add("namespace", f"{BUILTIN_NAMESPACE!r} is reserved for built-in plugins")
    version = data.get("version")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        check.add("version", "required (e.g. 1.0.0)")
    actions_raw = data.get("actions")
    actions: dict[str, ActionSpec] = {}
    if not isinstance(actions_raw, dict) or not actions_raw:
        check.add("actions", "required: a mapping of action name to definition")
        actions_raw = {}
    resolved_dir = plugin_dir.resolve()
    for action_name, body in actions_raw.items():
        path = f"actions.{action_name}"
        if not isinstance(action_name, str) or not _NAME.match(action_name):
            check.add(path, "action names use lowercase letters, digits and '-' only")
            continue
        if not isinstance(body, dict):
            check.add(path, "must be a mapping with at least a command")
            continue
        check.unknown_keys(body, _ACTION_KEYS, path)
        # In this order, so the manifest's problems read in the order of its keys.
        command = _command(body.get("command"), resolved_dir, f"{path}.command", check)
        timeout_ms = _action_timeout(body.get("timeout"), path, check)
        inputs = _action_inputs(body.get("inputs"), path, check)
        outputs = _action_outputs(body.get("outputs"), path, check)
        actions[action_name] = ActionSpec(
            namespace=str(namespace),
            plugin=str(name),
            action=action_name,
            version=str(version),
            plugin_dir=resolved_dir,
            command=command,
            inputs=inputs,
            timeout_ms=timeout_ms,
            description=str(body.get("description") or ""),
            outputs=outputs,
            builtin=builtin,
        )
    if check.problems:
        raise PluginError(f"{manifest}: " + "; ".join(check.problems))
    return PluginInfo(
        namespace=str(namespace),
        name=str(name),
        version=str(version),
        description=str(data.get("description") or ""),
        plugin_dir=resolved_dir,
        actions=actions,
        builtin=builtin,
    )


class PluginRegistry:
    """Every plugin action an engine process can run, by task type.

    Attributes:
        problems: manifests that could not be loaded (one line each); they do not stop
            discovery, and a workflow using such a plugin reports them.
        searched: the plugin path folders, in search order.
    """

    def __init__(
        self,
        plugins: Sequence[PluginInfo],
        *,
        problems: Sequence[str] = (),
        searched: Sequence[Path] = (),
    ) -> None:
        self._plugins: dict[str, PluginInfo] = {}
        for plugin in plugins:
            self._plugins.setdefault(plugin.key, plugin)
        self.problems: list[str] = list(problems)
        self.searched: list[Path] = list(searched)

    @classmethod
    def discover(cls, plugin_paths: Sequence[Path]) -> PluginRegistry:
        """Load the built-ins and every plugin folder under ``plugin_paths``.

        Args:
            plugin_paths: folders that contain plugin folders, in search order; missing
                folders are skipped (``./plugins`` usually does not exist).

        Returns:
            The registry; bad manifests are listed in ``problems``, not raised.
        """
        plugins: list[PluginInfo] = []
        problems: list[str] = []
        for folder in sorted(p for p in BUILTIN_DIR.iterdir() if (p / MANIFEST).is_file()):
            # A broken built-in is a packaging bug: fail loudly.
            plugins.append(load_manifest(folder, builtin=True))
        seen: set[str] = {plugin.key for plugin in plugins}
        for root in plugin_paths:
            if not root.is_dir():
                continue
            candidates = [root] if (root / MANIFEST).is_file() else sorted(root.iterdir())
            for folder in candidates:
                if not (folder / MANIFEST).is_file():
                    continue
                try:
                    plugin = load_manifest(folder)
                except PluginError as exc:
                    problems.append(str(exc))
                    continue
                if plugin.key not in seen:
                    seen.add(plugin.key)
                    plugins.append(plugin)
        return cls(plugins, problems=problems, searched=plugin_paths)

    def plugins(self) -> list[PluginInfo]:
        """Every plugin, built-ins first, then in discovery order."""
        return list(self._plugins.values())

    def actions(self) -> list[ActionSpec]:
        """Every action of every plugin."""
        return [a for plugin in self._plugins.values() for a in plugin.actions.values()]

    def action(self, type_str: str) -> ActionSpec:
        """The action a task type names.

        Args:
            type_str: ``namespace/plugin.action``.

        Raises:
            UnknownAction: malformed type, unknown plugin, or a plugin without that action;
                the message says which and what exists.
        """
        match = TYPE_PATTERN.match(type_str)
        if match is None:
            raise UnknownAction(
                f"invalid task type {type_str!r}: expected namespace/plugin.action "
                "(lowercase letters, digits and '-')"
            )
        namespace, name, action = match.groups()
        plugin = self._plugins.get(f"{namespace}/{name}")
        if plugin is None:
            known = ", ".join(sorted(self._plugins)) or "none"
            hint = ""
            if self.problems:
                count = len(self.problems)
                hint = (
                    f"; {count} plugin manifest{'s' if count > 1 else ''} could not be "
                    f"loaded: {self.problems[0]}"
                )
            raise UnknownAction(
                f"unknown plugin '{namespace}/{name}' (known plugins: {known}){hint}"
            )
        spec = plugin.actions.get(action)
        if spec is None:
            names = ", ".join(sorted(plugin.actions))
            raise UnknownAction(
                f"plugin '{namespace}/{name}' has no action {action!r} (actions: {names})"
            )
        return spec

    def source_for(self, type_str: str) -> str:
        """The log source of a task type's plugin lines: ``plugin:<ns>/<plugin>.<action>``."""
        return f"plugin:{type_str}"
