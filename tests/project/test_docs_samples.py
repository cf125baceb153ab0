"""Every code sample and command of README.rst and docs/ runs as written.

Each document is one session (see ``docs_harness.py``): its samples run in
order in a temporary directory and one Python namespace, Python samples
executed, ``>>>`` samples checked as doctests against a live server, shell
commands run with bash, JavaScript with node.

Samples are skipped only by a ``.. test: skip (reason)`` comment in the
document, or, in documents other engineers own, through the lists below.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from docs_harness import Block, SampleError, Session, parse

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]

#: Samples of documents owned elsewhere that do not run yet, by (file, a text
#: the sample contains), with the reason: they are expected to fail, and this
#: test says so when one starts to pass.
KNOWN_PENDING: dict[tuple[str, str], str] = {}

#: Samples of documents owned elsewhere that cannot run in a test, by (file, a
#: text the sample contains), with the reason.
SKIPPED_ELSEWHERE: dict[tuple[str, str], str] = {
    ("README.rst", "python -m pip install -q -e '.[test]' && python -m pytest"): (
        "runs this whole test suite in a fresh virtual environment: .ci/run runs exactly this"
    ),
}


def _listed(table: dict[tuple[str, str], str], block: Block) -> str | None:
    return next(
        (
            why
            for (name, text), why in table.items()
            if name == block.path.name and text in block.code
        ),
        None,
    )


#: Commands that set up an environment: checked against the test's own
#: environment instead of run (no network in tests; the package is installed
#: in the environment running them, whose ``bin`` comes first on the PATH).
SETUP_COMMANDS = re.compile(
    r"^(?:python3? -m venv\b.*|\. \.venv/bin/activate|(?:python3? -m )?pip install\b.*)$"
)


def _install_check(block: Block) -> Block:
    """Environment set-up in a shell sample becomes a check of the environment."""
    lines = []
    for line in block.code.splitlines():
        parts = [part.strip() for part in line.split("&&")]
        if any(SETUP_COMMANDS.match(part) for part in parts):
            parts = [
                "python -c 'import flask_rpcenable'" if SETUP_COMMANDS.match(part) else part
                for part in parts
            ]
            line = " && ".join(parts)
        lines.append(line)
    return Block(
        block.path,
        block.line,
        block.lang,
        "\n".join(lines) + "\n",
        block.skip,
        block.files,
        block.new,
    )


def run_document(path: Path, directory: Path, text: str | None = None) -> list[str]:
    """Run every sample of ``path``; return the skipped ones with their reasons."""
    skipped: list[str] = []
    pending_failed: list[str] = []
    session = Session(directory)
    try:
        for block in parse(path, text):
            reason = block.skip or _listed(SKIPPED_ELSEWHERE, block)
            if reason:
                skipped.append(f"{block.where}: {reason}")
                continue
            if block.lang == "sh":
                block = _install_check(block)
            if _listed(KNOWN_PENDING, block):
                try:
                    session.run(block)
                except SampleError:
                    pending_failed.append(block.where)
                    continue
                raise SampleError(f"{block.where} runs now: drop it from KNOWN_PENDING")
            session.run(block)
    finally:
        session.close()
    return skipped


@pytest.mark.parametrize("path", DOCUMENTS, ids=[p.name for p in DOCUMENTS])
def test_samples_run_as_written(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RPCENABLE_TEST_POSTGRES_URL", raising=False)
    if path.name == "README.rst":
        # The README's commands run from a checkout: give them one.
        shutil.copytree(
            ROOT / "example",
            tmp_path / "example",
            ignore=shutil.ignore_patterns("instance", "__pycache__"),
        )
    run_document(path, tmp_path)


BROKEN = """\
A page
======

.. code-block:: python

    from flask import Flask
    from flask_rpcenable import RPCEnable

    rpc = RPCEnable()

    @rpc.register
    def echo(var: str = "") -> str:
        return f"Server says: {var}"

    def create_app() -> Flask:
        app = Flask(__name__)
        rpc.init_app(app)
        return app

Call it::

    >>> from xmlrpc.client import ServerProxy
    >>> ServerProxy("http://127.0.0.1:5000/rpc/").echo("Hi!")
    'Server says: Hello!'
"""


def test_harness_catches_a_wrong_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.rst"
    got = r"page.rst:22: doctest failed(.|\n)*Got:\n    'Server says: Hi!'"
    with pytest.raises(SampleError, match=got):
        run_document(page, tmp_path, BROKEN)
    run_document(page, tmp_path, BROKEN.replace("Hello!", "Hi!"))


def test_harness_catches_a_failing_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.rst"
    text = BROKEN.replace("Hello!", "Hi!") + "\nThen::\n\n    flask --app app routes\n"
    with pytest.raises(SampleError, match="flask --app app routes` exited"):
        run_document(page, tmp_path, text)  # no app.py was written
    marked = text.replace(
        ".. code-block:: python", ".. test: file app.py\n\n.. code-block:: python", 1
    )
    run_document(page, tmp_path, marked)


def test_skip_needs_a_reason(tmp_path: Path) -> None:
    with pytest.raises(SampleError, match="needs a reason"):
        parse(tmp_path / "p.rst", ".. test: skip\n\n::\n\n    flask run\n")
