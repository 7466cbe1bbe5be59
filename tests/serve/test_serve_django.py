"""``manage.py relayserve`` serving a real Django project: a view, a CSRF-protected form, settings, checks."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Dict

import requests

from hybridconn.emulator import RelayEmulator
from tests.support.plain_clients import Sender
from tests.support.processes import ChildProcess, StartProcess, child_env

SITE = Path(__file__).resolve().parent / "relaysite"


def _relayserve(start_process: StartProcess, env: Dict[str, str], *args: str) -> ChildProcess:
    return start_process(["manage.py", "relayserve", *args], env, cwd=SITE, merge_stderr=True)


def test_relayserve_serves_a_view_and_a_csrf_protected_form(relay: RelayEmulator, start_process: StartProcess) -> None:
    env = child_env(relay.connection_string("hc1"))
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = _relayserve(start_process, env, "--workers", "2")
    process.wait_for("Ctrl-C to stop")
    sender = Sender(relay)
    origin = relay.namespace.replace("ws://", "http://")
    with requests.Session() as session:
        page = sender.request("GET", "/", session=session)
        assert page.status_code == 200 and page.text.startswith("hello from django in ")
        assert page.text.endswith(f"at {origin.split('//')[1]}")  # the host Django sees is the namespace's
        form = sender.request("GET", "/comment/", session=session)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
        assert session.cookies.get("csrftoken", path="/hc1/")  # the CSRF cookie, scoped to this app's path
        posted = sender.request("POST", "/comment/", session=session, data={"csrfmiddlewaretoken": token,
                                "text": "hi"}, headers={"Origin": origin, "Referer": origin + "/hc1/comment/"})
        assert (posted.status_code, posted.text) == (200, "thanks for: hi")
        forged = sender.request("POST", "/comment/", session=session, data={"text": "x"}, headers={"Origin": origin})
        assert forged.status_code == 403  # no token: Django's CSRF protection holds through the relay
        elsewhere = sender.request("POST", "/comment/", session=session, data={"csrfmiddlewaretoken": token,
                                   "text": "x"}, headers={"Origin": "http://evil.example"})
        assert elsewhere.status_code == 403  # a foreign Origin is refused
    process.process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    sender.close()


def test_relayserve_reads_hybridconn_settings_below_the_environment(start_process: StartProcess) -> None:
    env = child_env()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["HYBRIDCONN_GRACEFUL_TIMEOUT"] = "12"
    process = _relayserve(start_process, env, "--print-config", "--workers", "3")
    assert process.finish() == 0
    text = "\n".join(process.lines)
    assert "app = 'relaysite.wsgi:application'  # Django settings" in text
    assert "threads = 4  # Django settings" in text
    assert "graceful_timeout = 12.0  # HYBRIDCONN_GRACEFUL_TIMEOUT" in text
    assert "workers = 3  # command line" in text


def test_the_allowed_hosts_check_warns_about_the_relays_host(start_process: StartProcess) -> None:
    env = child_env("Endpoint=sb://contoso.example.net/;SharedAccessKeyName=k;SharedAccessKey=a2V5;EntityPath=hc1")
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = start_process(["manage.py", "check"], env, cwd=SITE, merge_stderr=True)
    assert process.finish() == 0
    output = "\n".join(process.lines)
    assert "hybridconn.W001" in output and "'contoso.example.net'" in output
    assert "a2V5" not in output
