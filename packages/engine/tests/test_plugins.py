"""Plugin manifests and discovery: built-ins, plugin path folders, precedence, bad manifests."""

from __future__ import annotations

import ast
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from autokestra_engine import (
    AttemptRequest,
    PluginError,
    PluginExecutor,
    PluginRegistry,
    UnknownAction,
    load_manifest,
)
from autokestra_engine.language._plugin_registry import BUILTIN_DIR
from autokestra_obs_collector import Redactor
from autokestra_obs_collector.testing import MemorySink
from autokestra_obs_schema import LogLevel

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "plugins"

MANIFEST = """\
namespace: acme
name: {name}
version: 1.2.0
description: Probe plugin
actions:
  run:
    description: Emit lines
    command: ["python3", "probe.py"]
    timeout: 30s
    inputs:
      message: {{type: string, required: true}}
      token: {{type: string, secret: true}}
      count: {{type: int, default: 2}}
    outputs:
      echoed: {{type: string}}
"""


def plugin(root: Path, folder: str, text: str) -> Path:
    path = root / folder
    path.mkdir(parents=True)
    (path / "plugin.yaml").write_text(textwrap.dedent(text))
    (path / "probe.py").write_text("print('hi')\n")
    return path


# DESIGN.md §3: the built-ins' inputs and outputs are a contract.
CONTRACT: dict[str, tuple[set[str], set[str]]] = {
    "core/shell.run": ({"command", "env", "cwd"}, {"exit_code"}),
    "core/log.emit": ({"message", "level"}, {"message"}),
    "core/wait.sleep": ({"duration"}, {"slept_ms"}),
    "core/http.request": (
        {"url", "method", "headers", "body", "timeout"},
        {"status", "headers", "body"},
    ),
    "core/python.run": ({"script", "args"}, set()),
}


class TestBuiltins:
    @pytest.mark.parametrize("type_str", sorted(CONTRACT))
    def test_builtin_inputs_and_outputs(self, type_str: str) -> None:
        """Each built-in declares at least the contract's inputs and exactly its outputs."""
        action = PluginRegistry.discover([]).action(type_str)
        inputs, outputs = CONTRACT[type_str]
        assert inputs <= set(action.inputs)
        assert set(action.outputs) == outputs
        assert action.builtin is True

    def test_builtins_run_with_the_engine_interpreter(self) -> None:
        """{python} in a built-in's command is the engine's own interpreter, scripts absolute."""
        action = PluginRegistry.discover([]).action("core/shell.run")
        assert action.command[0] == sys.executable
        assert action.command[-1] == str(BUILTIN_DIR.resolve() / "shell" / "shell.py")

    def test_required_and_default_declarations(self) -> None:
        """Required inputs and defaults are as documented."""
        registry = PluginRegistry.discover([])
        assert registry.action("core/shell.run").inputs["command"].required is True
        assert registry.action("core/log.emit").inputs["level"].default == "INFO"
        assert registry.action("core/http.request").inputs["method"].default == "GET"

    def test_log_levels_match_the_vocabulary(self) -> None:
        """core/log.emit spells the levels itself (no imports at start-up): they stay LogLevel's."""
        levels = [level.value for level in LogLevel]
        registry = PluginRegistry.discover([])
        assert list(registry.action("core/log.emit").inputs["level"].enum or ()) == levels
        script = ast.parse((BUILTIN_DIR / "log" / "log.py").read_text())
        assigned = [
            node.value
            for node in script.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "LEVELS" for t in node.targets)
        ]
        assert [ast.literal_eval(value) for value in assigned] == [tuple(levels)]


class TestManifest:
    def test_manifest_fields(self, tmp_path: Path) -> None:
        """A manifest gives an action with its command, timeout and typed input declarations."""
        folder = plugin(tmp_path, "probe", MANIFEST.format(name="probe"))
        info = load_manifest(folder)
        action = info.actions["run"]
        assert (info.key, info.version, info.description) == ("acme/probe", "1.2.0", "Probe plugin")
        assert action.type == "acme/probe.run"
        assert action.source == "plugin:acme/probe.run"
        assert action.command == ("python3", str(folder.resolve() / "probe.py"))
        assert action.timeout_ms == 30_000
        assert action.inputs["message"].required is True
        assert action.inputs["token"].secret is True
        assert action.inputs["count"].type == "integer"
        assert action.inputs["count"].default == 2
        assert action.outputs == {"echoed": "string"}
        assert action.plugin_dir == folder.resolve()

    def test_relative_program_path_is_made_absolute(self, tmp_path: Path) -> None:
        """A program path with a slash is relative to the plugin folder."""
        folder = plugin(
            tmp_path,
            "p",
            "namespace: a\nname: p\nversion: '1'\nactions: {go: {command: [./bin/tool, -v]}}\n",
        )
        assert load_manifest(folder).actions["go"].command == (
            str(folder.resolve() / "bin/tool"),
            "-v",
        )

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("name: p\nversion: '1'\nactions: {go: {command: [x]}}", "namespace: required"),
            ("namespace: A_B\nname: p\nversion: '1'\nactions: {go: {command: [x]}}", "namespace"),
            ("namespace: a\nname: p\nactions: {go: {command: [x]}}", "version: required"),
            ("namespace: a\nname: p\nversion: '1'", "actions: required"),
            ("namespace: a\nname: p\nversion: '1'\nactions: {go: {}}", "actions.go.command"),
            ("namespace: a\nname: p\nversion: '1'\nactions: {go: {command: 'x y'}}", "command"),
            (
                "namespace: a\nname: p\nversion: '1'\nactions: {go: {command: [x], timeout: 5}}",
                "actions.go.timeout: invalid duration",
            ),
            (
                "namespace: a\nname: p\nversion: '1'\n"
                "actions: {go: {command: [x], inputs: {n: {type: decimal}}}}",
                "actions.go.inputs.n.type: unknown type",
            ),
            (
                "namespace: a\nname: p\nversion: '1'\n"
                "actions: {go: {command: [x], inputs: {n: {type: integer, default: x}}}}",
                "actions.go.inputs.n.default",
            ),
            (
                "namespace: a\nname: p\nversion: '1'\nactions: {go: {command: [x], cmd: [y]}}",
                "actions.go.cmd: unknown key",
            ),
            ("namespace: core\nname: p\nversion: '1'\nactions: {go: {command: [x]}}", "reserved"),
            ("namespace: a\nname: p\nversion: '1'\nactions: {Go: {command: [x]}}", "actions.Go"),
            ("[1, 2]", "expected a mapping"),
            ("namespace: a\n  name: p: q\n", "2:7"),
        ],
    )
    def test_bad_manifests(self, tmp_path: Path, text: str, fragment: str) -> None:
        """Each manifest mistake is a PluginError naming the file and the key."""
        folder = plugin(tmp_path, "bad", text)
        with pytest.raises(PluginError) as info:
            load_manifest(folder)
        assert fragment in str(info.value)
        assert str(folder / "plugin.yaml") in str(info.value)


class TestDiscovery:
    def test_plugins_are_found_in_path_folders(self, tmp_path: Path) -> None:
        """A plugin path folder's plugin folders are loaded next to the built-ins."""
        plugin(tmp_path / "plugins", "probe", MANIFEST.format(name="probe"))
        registry = PluginRegistry.discover([tmp_path / "plugins"])
        assert registry.action("acme/probe.run").plugin == "probe"
        assert registry.action("core/log.emit").builtin is True
        assert registry.problems == []

    def test_a_plugin_folder_itself_may_be_given(self, tmp_path: Path) -> None:
        """A path entry that is itself a plugin folder is loaded too."""
        folder = plugin(tmp_path, "probe", MANIFEST.format(name="probe"))
        assert PluginRegistry.discover([folder]).action("acme/probe.run").plugin_dir == folder

    def test_first_folder_wins(self, tmp_path: Path) -> None:
        """The same plugin in two path folders: the earlier folder's copy is used."""
        first = plugin(tmp_path / "one", "probe", MANIFEST.format(name="probe"))
        plugin(tmp_path / "two", "probe", MANIFEST.format(name="probe"))
        registry = PluginRegistry.discover([tmp_path / "one", tmp_path / "two"])
        assert registry.action("acme/probe.run").plugin_dir == first.resolve()

    def test_missing_folders_are_skipped(self, tmp_path: Path) -> None:
        """A plugin path folder that does not exist is not an error."""
        registry = PluginRegistry.discover([tmp_path / "nope"])
        assert registry.problems == []

    def test_bad_manifest_is_reported_not_raised(self, tmp_path: Path) -> None:
        """One broken plugin does not stop discovery; a lookup miss mentions it."""
        plugin(tmp_path / "plugins", "broken", "namespace: acme\nname: broken\n")
        plugin(tmp_path / "plugins", "probe", MANIFEST.format(name="probe"))
        registry = PluginRegistry.discover([tmp_path / "plugins"])
        assert len(registry.problems) == 1
        assert registry.action("acme/probe.run").plugin == "probe"
        with pytest.raises(UnknownAction, match="1 plugin manifest could not be loaded"):
            registry.action("acme/broken.run")

    def test_unknown_plugin_and_action_messages(self) -> None:
        """Lookup errors say what is missing and what exists."""
        registry = PluginRegistry.discover([])
        with pytest.raises(UnknownAction, match=r"unknown plugin 'acme/x' \(known plugins: core"):
            registry.action("acme/x.run")
        with pytest.raises(UnknownAction, match=r"has no action 'shout' \(actions: emit\)"):
            registry.action("core/log.shout")
        with pytest.raises(UnknownAction, match="invalid task type"):
            registry.action("core.log")

    def test_source_for(self) -> None:
        """source_for gives the log source of a task type."""
        assert PluginRegistry.discover([]).source_for("core/log.emit") == "plugin:core/log.emit"


class TestExamplePlugin:
    def test_example_plugin_loads_and_runs(self, tmp_path: Path) -> None:
        """examples/plugins/acme-text runs through the executor like any plugin."""
        registry = PluginRegistry.discover([EXAMPLES])
        assert registry.problems == []
        action = registry.action("acme/text.stats")
        executor = PluginExecutor(registry, workdir=tmp_path, grace_ms=300)
        sink = MemorySink()
        request = AttemptRequest(
            "e", "measure", 1, action, {"text": "a b a\nc a", "top": 1}, 10_000, Redactor()
        )
        result = executor.run_attempt(request, sink, threading.Event())
        assert result.outcome == "success", result.error
        assert result.outputs == {"lines": 2, "words": 5, "chars": 9, "top_words": [["a", 3]]}
        assert "a: 3" in sink.messages()
