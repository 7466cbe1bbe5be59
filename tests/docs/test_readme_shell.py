"""README.rst's shell lines run here, as its Python blocks do in test_readme.py (issue 19, item 12).

The emulator walkthrough runs line by line against ``hybridconn emulator`` (on a free port instead
of 9350, which another process may hold): the printed export line must be the README's, each
command must do what its comment says. Every ``$`` line in the README is either run by a test here
or listed in :data:`NOT_YET_RUN`, which may only shrink: a new shell line needs a test.
"""

from __future__ import annotations

import re
import shlex
from typing import Dict, List

from tests.support.processes import REPO, StartProcess, child_env, pasted, run_cli

README = REPO / "README.rst"

#: Shell lines no test runs yet (they need Azure, a Django project named mysite, or forward's targets).
NOT_YET_RUN = {
    "hybridconn serve mysite.wsgi:application",
    "hybridconn serve app:app --workers 2 --access-logfile -",
    "hybridconn serve mysite.wsgi:application -c hybridconn.conf.py --metrics 127.0.0.1:9100",
    "az login",
    "hybridconn listen --echo --auth azure-cli -c 'Endpoint=sb://contoso.servicebus.windows.net/;EntityPath=orders'",
    "hybridconn request GET /status --auth azure-cli -c 'Endpoint=sb://contoso.servicebus.windows.net/;EntityPath=orders'",
    "hybridconn token --auth azure-cli",
    "hybridconn forward -R hc1/db:127.0.0.1:5432",
    "hybridconn forward -L 15432:hc1/db",
    "hybridconn forward -H hc1:http/localhost/grafana:3000",
}


def shell_lines() -> List[str]:
    """Every ``$ command`` line in the README, without its comment."""
    found = []
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s+\$ (.*)$", line)
        if match:
            found.append(" ".join(shlex.split(match.group(1), comments=True)) if "'" not in match.group(1)
                         else match.group(1).split("  #", 1)[0].strip())
    return found


def walkthrough() -> List[str]:
    lines = shell_lines()
    start = next(i for i, line in enumerate(lines) if line.startswith("hybridconn emulator"))
    end = next(i for i, line in enumerate(lines) if line == "hybridconn demo")
    return lines[start:end + 1]


def test_every_shell_line_is_run_or_listed() -> None:
    run_here = set(walkthrough()) | {"hybridconn serve mysite.wsgi:application --print-config"}
    unknown = [line for line in shell_lines() if line not in run_here and line not in NOT_YET_RUN]
    assert not unknown, f"README shell lines no test runs: {unknown}"
    stale = NOT_YET_RUN - set(shell_lines())
    assert not stale, f"no longer in the README, drop them from NOT_YET_RUN: {stale}"


def test_print_config_runs_without_the_app() -> None:
    result = run_cli(shlex.split("serve mysite.wsgi:application --print-config"), child_env())
    assert result.returncode == 0, result.stderr
    assert "app = 'mysite.wsgi:application'" in result.stdout or "mysite.wsgi:application" in result.stdout


def test_the_emulator_walkthrough_runs_as_written(start_process: StartProcess) -> None:
    lines = walkthrough()
    emulator_line, export_line, listen_line, *rest = lines
    assert emulator_line == "hybridconn emulator --hc hc1 --hc orders"
    emulator = start_process(["-m", *shlex.split(emulator_line), "--port", "0"], child_env())
    printed = emulator.wait_for("HYBRIDCONN_CONNECTION_STRING=")
    port = re.search(r"127\.0\.0\.1:(\d+)/", printed).group(1)  # type: ignore[union-attr]
    assert f"export {printed.split('export ', 1)[1]}".replace(f":{port}/", ":9350/") == export_line
    env: Dict[str, str] = child_env(pasted(printed))
    assert listen_line == "hybridconn listen --echo"
    listen = start_process(["-m", *shlex.split(listen_line)], env, merge_stderr=True)
    listen.wait_for("Ctrl-C to stop")
    expected = iter(rest)

    def run(line: str, stdin: str = "") -> "object":
        assert next(expected) == line
        return run_cli(shlex.split(line)[1:], env, stdin=stdin)

    posted = run("hybridconn request POST /hello -d 'hi there'")
    assert (posted.returncode, posted.stdout) == (0, "hi there"), posted.stderr  # type: ignore[attr-defined]
    verbose = run("hybridconn request GET /hello -v --fail")
    assert verbose.returncode == 0 and verbose.stderr.startswith("HTTP 200 OK")  # type: ignore[attr-defined]
    chat = run("hybridconn connect --suffix /chat", stdin="hello\n")
    assert (chat.returncode, chat.stdout) == (0, "hello\n"), chat.stderr  # type: ignore[attr-defined]
    token = run("hybridconn token hc1 --ttl 600")
    assert token.returncode == 0 and token.stdout.startswith("SharedAccessSignature "), token.stderr  # type: ignore[attr-defined]
    assert listen.interrupt() == 0  # "after Ctrl-C in listen's terminal"
    gone = run("hybridconn request GET /hello")
    assert gone.returncode == 11 and gone.stderr.count("\n") == 1, gone.stderr  # type: ignore[attr-defined]
    demo = run("hybridconn demo")
    assert demo.returncode == 0, demo.stdout  # type: ignore[attr-defined]
