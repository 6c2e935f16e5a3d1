"""Every `fourds-ros ...` / `python -m training...` / `python -m fourds_ros...` / `python tools/X.py` command line
shown in the README, docs/*.md and the model card parses with today's parsers (argparse, --param checked against the
node's parameters, ReadoutsConfig's validation, the pretrain config's overrides), without running anything expensive.
A synopsis ([--x], {a,b,...}, a|b) is expanded; a fragment (a flag named in prose without the required arguments)
must name only flags its command has."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
        "models/fourds_default/README.md"]
COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:\S*/)?(?:fourds-ros|python3? -m (?:training|fourds_ros)\.\S+|"
                     r"python3? tools/\S+\.py|torchrun .*?-m training\.\S+)(?:\s|$)")
PLACEHOLDERS = [(r"--hop H\b", "--hop 7"), (r"--rounds N\b", "--rounds 2"), (r"--pose-starts N\b", "--pose-starts 6"),
                (r"--size WxH\b", "--size 640x480"), (r"--alpha A\b", "--alpha 0.5"), (r"--param NAME=VALUE", ""),
                (r"=N\b", "=2"), (r"\{(\d+)\|\d+\}", r"\1"), (r"\s\.\.\.(?=\s|$)", " ")]


def _shell_lines(lines: list[str], first: int):
    """(line number, command) of a block's lines, `\\` continuations joined, comment lines inside skipped."""
    buf, start = "", first
    for i, raw in enumerate(lines):
        s = raw.strip()
        if buf and s.startswith("#"):
            continue
        if not buf:
            start = first + i
        buf += " " + s
        if buf.endswith("\\"):
            buf = buf[:-1]
            continue
        yield start, buf
        buf = ""


def _candidates(text: str):
    """(line, text) of fenced blocks, indented code blocks and inline spans (which cross line breaks)."""
    for m in re.finditer(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
        yield from _shell_lines(m.group(1).split("\n"), text[:m.start()].count("\n") + 2)
    prose = re.sub(r"^```[^\n]*\n.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    lines = prose.split("\n")
    block: list[str] = []
    for i, raw in enumerate(lines + [""]):
        if raw.startswith("    ") and (block or i == 0 or not lines[i - 1].strip()):
            block.append(raw)
            continue
        yield from _shell_lines(block, i - len(block) + 1)
        block = []
    for m in re.finditer(r"(?<!`)`([^`]+)`(?!`)", prose):
        yield prose[:m.start()].count("\n") + 1, m.group(1)


def _commands(path: Path) -> list[tuple[int, str]]:
    found = []
    for line, cmd in _candidates(path.read_text()):
        cmd = re.sub(r"\s+#.*$", "", " ".join(cmd.split()))
        cmd = re.sub(r"\s+(2>&1|>\s*\S+|\|).*$", "", cmd)
        if COMMAND.match(cmd) and "<" not in cmd:
            found.append((line, cmd))
    return found


def _variants(cmd: str) -> list[str]:
    for a, b in PLACEHOLDERS:
        cmd = re.sub(a, b, cmd)
    cmd = re.sub(r"\{([^},]+),[^}]*\}", r"\1", cmd).replace("[", "").replace("]", "")
    cmd = re.sub(r"\s\.\.\.(?=\s|$)", " ", cmd)
    m = re.search(r"(\S+?)=(\w+)\|(\w+)", cmd)
    return [cmd.replace(m.group(0), f"{m.group(1)}={v}") for v in m.group(2, 3)] if m else [cmd]


CASES = [pytest.param(cmd, id=f"{doc}:{line}") for doc in DOCS for line, cmd in _commands(ROOT / doc)]


class Parsed(Exception):
    pass


PASSTHROUGH: list = []


@pytest.fixture
def parse_only(monkeypatch):
    """parse_args parses (and checks --param against the node's parameters), then stops the command."""
    from fourds_ros.evaluation.eval_cli import command_params

    original, original_known = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    seen = {"depth": 0}

    def parse_args(self, args=None, namespace=None):
        seen.setdefault("parser", self)
        seen["depth"] += 1
        try:
            ns = original(self, args, namespace)
        finally:
            seen["depth"] -= 1
        if getattr(ns, "param", None):
            command_params(self, ns)
        if PASSTHROUGH:  # train_readouts: its ReadoutsConfig validates the namespace after argparse
            return ns
        raise Parsed(ns)

    def parse_known_args(self, args=None, namespace=None):  # probe's parser, and subparsers inside parse_args
        seen.setdefault("parser", self)
        if seen["depth"]:
            return original_known(self, args, namespace)
        raise Parsed(original_known(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_known_args", parse_known_args)
    monkeypatch.chdir(ROOT)
    return seen


def _entry(tokens: list[str]):
    while re.match(r"^[A-Z_][A-Z0-9_]*=", tokens[0]):
        tokens.pop(0)
    if tokens[0].rsplit("/", 1)[-1] == "fourds-ros":
        from fourds_ros.cli import main
        return main, tokens[1:]
    if tokens[0] == "torchrun" or tokens[:3] == ["python", "-m", "training.pretrain"]:
        argv = tokens[tokens.index("-m") + 2:]

        def pretrain(a):
            from training.pretrain import main
            from training.pretrain_config import load_config
            try:
                main(a)
            except Parsed as e:
                load_config(e.args[0].config, e.args[0].overrides)  # the overrides' keys and types
                raise
        return pretrain, argv
    if tokens[1] == "-m" and tokens[2] == "training.train_readouts":
        from training.readouts_config import parse_args

        def readouts(a):
            PASSTHROUGH.append(1)
            try:
                config = parse_args(a)  # ReadoutsConfig's validation too
            finally:
                PASSTHROUGH.clear()
            raise Parsed(config)
        return readouts, tokens[3:]
    if tokens[1] == "-m":
        module = importlib.import_module(tokens[2])
        if not hasattr(module, "main"):  # a module run for its output (settings > config/perception.yaml)
            import runpy
            return (lambda: runpy.run_module(tokens[2], run_name="__main__")), tokens[3:]
        return module.main, tokens[3:]
    path = ROOT / tokens[1]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "tools"))
    spec.loader.exec_module(module)
    return module.main, tokens[2:]


def test_the_documents_show_commands():
    assert len(CASES) > 150  # the extraction still finds them (276 today)


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy of the settings module
@pytest.mark.parametrize("cmd", CASES)
def test_a_documented_command_parses(cmd, parse_only, monkeypatch):
    for variant in _variants(cmd):
        main, argv = _entry(shlex.split(variant))
        monkeypatch.setattr(sys, "argv", ["x", *argv])  # tools whose main() reads sys.argv
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                main(argv) if getattr(main, "__code__", None) and main.__code__.co_argcount else main()
        except Parsed:
            parser, tail = parse_only.get("parser"), argv
        except SystemExit:
            message = err.getvalue().strip().splitlines()[-1]
            # a fragment: a flag named in prose without its command's required arguments
            assert re.search(r"arguments are required|expected (at least )?one argument", message), (variant, message)
            parser, tail = parse_only["parser"], argv
        else:
            assert not argv, f"{variant!r} ran past its parser"
            continue
        for action in parser._actions:  # bag convert / import: the subcommand's own parser
            if isinstance(action, argparse._SubParsersAction):
                sub = next((a for a in tail if a in action.choices), None)
                parser = action.choices[sub] if sub else parser
        flags = [t.split("=")[0] for t in tail if t.startswith("--")]
        unknown = [f for f in flags if f not in parser._option_string_actions]
        assert not unknown, f"{variant!r}: no such flag(s) {unknown}"


def test_no_documented_training_command_writes_over_the_shipped_model():
    """The model card's stage 2 command gave `models/fourds_default` as the recipe's OUT_DIR (a rerun replaced the
    shipped weights and its 3,000-line card with a generated one), and stages 3-4 read INIT from there, which now
    holds stage 20. Commands write to runs/ and the card says what was copied in."""
    shipped = "models/fourds_default"
    offenders = []
    for doc in DOCS:
        for line_no, line in enumerate((ROOT / doc).read_text().splitlines(), 1):
            for cmd in re.findall(r"`([^`]*(?:default_model\.sh|training\.train_readouts|training\.pretrain)[^`]*)`", line):
                words = cmd.split()
                out = words[words.index("--out") + 1] if "--out" in words else None
                if "bash" in words and words[words.index("bash") + 1].endswith("default_model.sh"):
                    after = words[words.index("bash") + 2:]  # DATA_DIR [OUT_DIR]
                    out = after[1] if len(after) > 1 else None
                if out is not None and out.rstrip("/") == shipped:
                    offenders.append(f"{doc}:{line_no}: {cmd}")
    assert offenders == [], offenders
