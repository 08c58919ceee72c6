"""The CLI: every command and option has help text, the top-level help is plain text, and a missing optional
extra ends with one line naming the install command (exit code 2) instead of a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nself_analytics.host import cli

ROOT = Path(__file__).resolve().parents[1]


def test_every_command_and_option_has_help() -> None:
    parser = cli._parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helped = {choice.dest: choice.help for choice in commands._choices_actions}
    assert set(helped) == set(commands.choices) and all(helped.values()), helped
    for name, sub in commands.choices.items():
        for action in sub._actions:
            if not isinstance(action, argparse._HelpAction):
                assert action.help, (name, action.dest)
    text = parser.format_help()
    assert "``" not in text and "`" not in text
    for name in ("install", "build", "start", "status", "stop", "bot", "mcp", "dead-letters"):
        assert name in text


@pytest.mark.parametrize(("argv", "module", "extra"), [
    (["mcp"], "mcp", "mcp"), (["bot", "telegram"], "telegram", "bots"), (["bot", "discord"], "discord", "bots"),
])
def test_a_missing_extra_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: Any, argv: list[str],
                                                module: str, extra: str) -> None:
    # as if the extra were not installed: importing its module fails
    monkeypatch.setitem(sys.modules, module, None)
    for loaded in [name for name in sys.modules if name.startswith(("nself_analytics.integrations", module + "."))]:
        monkeypatch.delitem(sys.modules, loaded)
    monkeypatch.setenv("ANALYTICS_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ANALYTICS_API_TOKEN", "sk_x")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:x")
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "x")
    monkeypatch.setenv("ANALYTICS_SITE", "example.com")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"pip install -e '.[{extra}]'" in err and "not on PyPI" in err


def test_hooks_install_refuses_an_unknown_extra() -> None:
    result = subprocess.run(["bash", str(ROOT / "hooks" / "install"), "--extras", "mcp,nope"], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 2 and "unknown extra 'nope'" in result.stderr
