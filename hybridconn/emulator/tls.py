"""TLS for the emulator: a server context from files, or a self-signed certificate made with ``openssl``.

No ``cryptography`` dependency: the self-signed certificate comes from the
``openssl`` command line tool, valid for ``127.0.0.1``, ``::1`` and
``localhost``, and doubles as the CA file clients trust (``verify=`` for
hybridconn and requests, ``NODE_EXTRA_CA_CERTS`` for Node).
"""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from typing import Optional, Tuple, Union

__all__ = ["TlsSetup", "make_self_signed", "server_context"]

TlsOption = Union[None, str, Tuple[str, str], ssl.SSLContext]


class TlsSetup:
    """The server context plus, for a self-signed setup, where its certificate lives."""

    def __init__(
        self, context: Optional[ssl.SSLContext], certificate_path: Optional[str] = None, tempdir: Optional[str] = None
    ) -> None:
        self.context = context
        self.certificate_path = certificate_path
        self._tempdir = tempdir

    def cleanup(self) -> None:
        if self._tempdir:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None


def make_self_signed(directory: str, common_name: str = "localhost", days: int = 30) -> Tuple[str, str]:
    """Write ``cert.pem`` and ``key.pem`` into ``directory``; returns their paths.

    :raises RuntimeError: when the ``openssl`` tool is missing or fails.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError(
            "tls='self-signed' needs the openssl command line tool; install it or pass tls=(certfile, keyfile)"
        )
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    command = [
        openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
        "-keyout", key, "-out", cert, "-days", str(days), "-subj", f"/CN={common_name}",
        "-addext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
        "-addext", "extendedKeyUsage=serverAuth",
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        raise RuntimeError(
            f"openssl could not make a self-signed certificate: {detail.decode(errors='replace').strip() or exc}"
        ) from exc
    return cert, key


def server_context(tls: TlsOption) -> TlsSetup:
    """Turn the ``tls`` option into a :class:`TlsSetup` (context None for plain TCP)."""
    if tls is None:
        return TlsSetup(None)
    if isinstance(tls, ssl.SSLContext):
        return TlsSetup(tls)
    tempdir = None
    if isinstance(tls, str):
        if tls != "self-signed":
            raise ValueError("tls must be None, 'self-signed', (certfile, keyfile) or an ssl.SSLContext")
        tempdir = tempfile.mkdtemp(prefix="hybridconn-emulator-tls-")
        try:
            certfile, keyfile = make_self_signed(tempdir)
        except Exception:
            shutil.rmtree(tempdir, ignore_errors=True)
            raise
    else:
        certfile, keyfile = tls
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return TlsSetup(context, certificate_path=certfile if tempdir else None, tempdir=tempdir)
