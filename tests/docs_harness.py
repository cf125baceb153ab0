"""Run the code samples of reStructuredText documents as written.

Not a test module: ``test_docs_samples.py`` drives it.

A document is split into *blocks*: ``.. code-block:: LANG`` directives and
literal blocks introduced by a paragraph ending in ``::``. Literal blocks are
shell when their first line starts with ``$`` or a command name (``flask``,
``python3``, ``printf``, ...), Python otherwise. Blocks of one document run in
order, in one :class:`Session` (a temporary directory and one Python
namespace), so a fragment continues the samples above it, as a reader would
type them:

- ``python``: executed in the session's namespace; a block of ``>>>`` lines
  is a doctest, its shown output checked;
- ``sh``: each command run with ``bash`` in the session's directory (``$``
  prompts stripped; lines without a prompt after a prompted command are its
  expected output, which must appear in what it printed); ``flask ... run``
  starts a real server in the background;
- ``javascript``: written to ``client.mjs`` and run with ``node``;
- ``text`` and other languages: not code, not run.

Rewrites, so that samples reach the test's own server instead of the ones they
name: ``http://127.0.0.1:5000``, ``http://localhost:5000``,
``https://example.org`` and ``https://api.example.org`` become the live
server's URL (a free port, plain HTTP), which is why ``SafeTransport`` becomes
``Transport`` too; ``flask ... run`` gets ``--port``. The live server is the
``flask run`` process when a sample started one, else the namespace's ``app``
(or ``create_app()``) served in a thread.

Markers, as reST comments (not rendered) right before a block:

``.. test: skip (reason)``
    The next block is not run; the reason is required.
``.. test: file NAME``
    The next block is also written to ``NAME`` in the session directory (for
    ``flask --app`` commands), before it runs; appended when ``NAME`` exists.
``.. test: setup`` / ``.. test: setup file NAME``
    The indented body of the comment is hidden setup code, executed in the
    namespace (and written to ``NAME``). Use it for what a page takes from an
    earlier page (an app, an API key), never to patch a sample.
``.. test: check``
    The indented body is hidden Python that checks what the samples above
    promise (a page answers 200, say), executed in the namespace.
``.. test: new``
    Start a fresh namespace (and stop the in-thread server) before the next
    block.
"""

from __future__ import annotations

import contextlib
import doctest
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

#: Bin folder of the interpreter running the tests (``flask``, ``python``).
BIN = str(Path(sys.executable).parent)
#: First words that make a ``::`` literal block a shell sample.
SHELL_WORDS = {"flask", "python", "python3", "pip", "printf", "export", "gunicorn", "curl"}
#: URLs of the samples that the live server stands in for.
URL_PATTERN = re.compile(
    r"https?://(?:127\.0\.0\.1:5000|localhost:5000|example\.org|api\.example\.org)"
)
#: Name of the module the Python samples run in.
MODULE = "docs_sample"
FLASK_RUN = re.compile(r"(?:^|&&|;)\s*(?:\w+=\S*\s+)*flask\b[^&;|]*\srun(?:\s|$)")


class SampleError(AssertionError):
    """A sample did not run as shown."""


@dataclass
class Block:
    """One sample of a document."""

    path: Path
    line: int  # 1-based line of the sample's first code line
    lang: str
    code: str
    skip: str | None = None
    files: list[str] = field(default_factory=list)
    new: bool = False

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"

    @property
    def first_line(self) -> str:
        return next((ln.strip() for ln in self.code.splitlines() if ln.strip()), "")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body(lines: list[str], start: int, indent: int, *, options: bool) -> tuple[int, str, int]:
    """The indented body after line ``start``: (first body line index, text, end index)."""
    i = start + 1
    if options:  # directive options (":linenos:") right after the directive
        while i < len(lines) and lines[i].strip().startswith(":") and _indent(lines[i]) > indent:
            i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    first = i
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > indent):
        i += 1
    return first, textwrap.dedent("\n".join(lines[first:i])).strip("\n") + "\n", i


def _literal_lang(code: str) -> str:
    first = code.lstrip().split(None, 1)[0] if code.strip() else ""
    return "sh" if first == "$" or first in SHELL_WORDS else "python"


def parse(path: Path, text: str | None = None) -> list[Block]:
    """The samples of one document, in order, with their markers."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    pending: dict[str, Any] = {"files": []}
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = _indent(line)
        marker = re.match(r"\s*\.\. test:\s*(\w+)\s*(.*)$", line)
        directive = re.match(r"\s*\.\. code-block::\s*(\S+)", line)
        if marker:
            kind, rest = marker.group(1), marker.group(2).strip()
            if kind == "skip":
                reason = rest.strip("() ")
                if not reason:
                    raise SampleError(f"{path.name}:{i + 1}: a skip needs a reason")
                pending["skip"] = reason
            elif kind == "file":
                pending["files"].append(rest)
            elif kind == "new":
                pending["new"] = True
            elif kind in ("setup", "check"):
                first, code, end = _body(lines, i, indent, options=False)
                files = [rest.split(None, 1)[1]] if rest.startswith("file ") else []
                blocks.append(
                    Block(
                        path, first + 1, "python", code, files=files, new=pending.get("new", False)
                    )
                )
                pending.pop("new", None)
                i = end
                continue
            else:
                raise SampleError(f"{path.name}:{i + 1}: unknown marker {kind!r}")
            i += 1
            continue
        if directive:
            lang = directive.group(1)
            first, code, end = _body(lines, i, indent, options=True)
        elif line.rstrip().endswith("::") and not re.match(r"\s*\.\. ", line):
            first, code, end = _body(lines, i, indent, options=False)
            lang = _literal_lang(code)
        else:
            i += 1
            continue
        blocks.append(
            Block(
                path,
                first + 1,
                lang,
                code,
                skip=pending.get("skip"),
                files=pending["files"],
                new=pending.get("new", False),
            )
        )
        pending = {"files": []}
        i = end
    return blocks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise SampleError(f"the server exited with {proc.returncode}:\n{out}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SampleError(f"nothing listens on port {port} after {timeout} s")


class Session:
    """Runs the blocks of one document in order; the caller makes ``directory`` the cwd."""

    def __init__(self, directory: Path, env: dict[str, str] | None = None) -> None:
        self.dir = directory
        self.env = {**os.environ, **(env or {})}
        self.env["PATH"] = BIN + os.pathsep + self.env.get("PATH", "")
        self.env.pop("RPCENABLE_TEST_POSTGRES_URL", None)
        self.ns: dict[str, Any] = {}
        self.base_url: str | None = None
        self._thread_server: Any = None
        self._procs: list[subprocess.Popen[str]] = []
        self.fresh_namespace()

    # -- lifecycle -------------------------------------------------------------

    def fresh_namespace(self) -> None:
        """A new module ``docs_sample`` (in ``sys.modules``: SQLAlchemy resolves
        annotations there) whose file is in the session directory."""
        self._stop_thread_server()
        module = types.ModuleType(MODULE)
        module.__file__ = str(self.dir / f"{MODULE}.py")
        sys.modules[MODULE] = module
        self.ns = module.__dict__

    def close(self) -> None:
        self._stop_thread_server()
        sys.modules.pop(MODULE, None)
        for name in self.ns.get("FAKE_MODULES", ()):  # stand-ins a setup block put there
            sys.modules.pop(name, None)
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
        self._procs.clear()

    def _stop_thread_server(self) -> None:
        if self._thread_server is not None:
            server, thread = self._thread_server
            server.shutdown()
            server.server_close()
            thread.join(10)
            self._thread_server = None
            self.base_url = None

    # -- the live server ---------------------------------------------------------

    def _app(self) -> Flask:
        app = self.ns.get("app")
        if isinstance(app, Flask):
            return app
        factory = self.ns.get("create_app")
        if callable(factory):
            app = factory()
            self.ns["app"] = app
            return app
        raise SampleError("the sample calls a server, but no app was defined before it")

    def live_url(self) -> str:
        if self.base_url is None:
            server = make_server("127.0.0.1", 0, self._app(), threaded=True)
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
            self._thread_server = (server, thread)
            self.base_url = f"http://127.0.0.1:{server.server_port}"
        return self.base_url

    def rewrite(self, code: str) -> str:
        if not URL_PATTERN.search(code):
            return code
        url = self.live_url()
        code = URL_PATTERN.sub(url, code)
        return code.replace("SafeTransport", "Transport")

    # -- running -------------------------------------------------------------------

    def run(self, block: Block) -> None:
        if block.new:
            self.fresh_namespace()
        for name in block.files:  # a second sample for the same file adds to it
            with (self.dir / name).open("a", encoding="utf-8") as file:
                file.write(block.code)
        runner = getattr(self, f"run_{block.lang}", None)
        if runner is None:
            return  # text, ini, ...: not code
        try:
            runner(block)
        except SampleError as exc:
            raise SampleError(f"{block.where}: {exc}") from None
        except Exception as exc:
            raise SampleError(f"{block.where}: {type(exc).__name__}: {exc}") from exc

    def run_python(self, block: Block) -> None:
        code = self.rewrite(block.code)
        if code.lstrip().startswith(">>>"):
            self._doctest(block, code)
            return
        # Blank lines in front, so that tracebacks give the document's line numbers.
        compiled = compile("\n" * (block.line - 1) + code, str(block.path), "exec")
        exec(compiled, self.ns)  # noqa: S102 - running the documentation is the point

    def _doctest(self, block: Block, code: str) -> None:
        test = doctest.DocTestParser().get_doctest(
            code, self.ns, block.where, str(block.path), block.line - 1
        )
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        report: list[str] = []
        runner.run(test, out=report.append, clear_globs=False)
        if runner.failures:
            raise SampleError("doctest failed:\n" + "".join(report))

    def run_sh(self, block: Block) -> None:
        """The commands of a block run in one shell, as a reader types them;
        a ``flask run`` among them starts a server and the shell after it."""
        script: list[str] = []
        expected: list[str] = []
        for command, output in _commands(block.code):
            command = self.rewrite_command(command)
            if FLASK_RUN.search(command) and not command.rstrip().endswith("--help"):
                if script:
                    self._shell("\n".join(script), expected)
                    script, expected = [], []
                self._start_server(command)
            else:
                script.append(command)
                expected.extend(output)
        if script:
            self._shell("\n".join(script), expected)

    def rewrite_command(self, command: str) -> str:
        if FLASK_RUN.search(command):
            return command  # the server is what gets rewritten (see _shell)
        return self.rewrite(command)

    def _shell(self, command: str, expected: list[str]) -> None:
        proc = subprocess.run(  # noqa: S603
            ["bash", "-c", "set -xeo pipefail\n" + command],
            cwd=self.dir,
            env={**self.env, **self.ns.get("SHELL_ENV", {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            raise SampleError(f"`{command}` exited with {proc.returncode}:\n{output}")
        for line in expected:
            if line not in proc.stdout:
                raise SampleError(f"`{command}` did not print {line!r}:\n{output}")

    def _start_server(self, command: str) -> None:
        self._stop_thread_server()  # later samples call the new server
        port = free_port()
        # `a && flask --app x run`: run the part before the server, then the server.
        before, _, server = command.rpartition("&&")
        if before.strip():
            self._shell(before.strip(), [])
        proc = subprocess.Popen(  # noqa: S603
            ["bash", "-c", f"{server.strip()} --port {port}"],
            cwd=self.dir,
            env={**self.env, **self.ns.get("SHELL_ENV", {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: close() stops all of it
        )
        self._procs.append(proc)
        wait_for_port(port, proc)
        self.base_url = f"http://127.0.0.1:{port}"

    def run_javascript(self, block: Block) -> None:
        script = self.dir / "client.mjs"
        script.write_text(block.code, encoding="utf-8")
        env = {**self.env, "RPC_URL": self.live_url() + "/rpc/"}
        env.update({k: str(v) for k, v in self.ns.get("JS_ENV", {}).items()})
        proc = subprocess.run(  # noqa: S603
            ["node", str(script)],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if proc.returncode != 0 or "faultCode" in proc.stdout:
            raise SampleError(f"node exited with {proc.returncode}:\n{proc.stdout}{proc.stderr}")
        expected = self.ns.get("JS_EXPECT", [])
        for text in expected:
            if text not in proc.stdout:
                raise SampleError(f"node did not print {text!r}:\n{proc.stdout}")


def _commands(code: str) -> list[tuple[str, list[str]]]:
    """Shell commands of a block with the output lines shown after each one."""
    lines = code.splitlines()
    prompted = any(ln.lstrip().startswith("$ ") for ln in lines)
    commands: list[tuple[str, list[str]]] = []
    buffer = ""
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if prompted and not line.startswith("$ "):
            if line.startswith("#"):
                continue  # a comment carried on to the next line
            if commands:
                commands[-1][1].append(line)
            continue
        line = line[2:] if line.startswith("$ ") else line
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        command = buffer + line
        buffer = ""
        # A trailing "# comment" is the shell's business, but keep it out of messages.
        words = shlex.split(command, comments=True)
        if words:
            commands.append((command, []))
    return commands
