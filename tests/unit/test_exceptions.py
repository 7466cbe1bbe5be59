"""The error tree, status mapping, tracking ids and messages."""

from __future__ import annotations

import copy
import pickle

import pytest

import hybridconn
from hybridconn.exceptions import (
    AuthenticationError,
    AuthorizationError,
    ConfigurationError,
    ConnectionClosed,
    ConnectionRejectedError,
    EndpointNotFoundError,
    HandshakeError,
    HybridConnectionError,
    ListenerUnavailableError,
    ProtocolError,
    RelayConnectionError,
    RelayTimeoutError,
    error_for_status,
)


def test_tree_shape() -> None:
    for cls in (ConfigurationError, HandshakeError, ConnectionClosed, ProtocolError, RelayTimeoutError,
                RelayConnectionError):
        assert issubclass(cls, HybridConnectionError)
    for cls in (AuthenticationError, AuthorizationError, EndpointNotFoundError, ListenerUnavailableError,
                ConnectionRejectedError):
        assert issubclass(cls, HandshakeError)
    assert issubclass(HybridConnectionError, Exception)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(RelayTimeoutError, TimeoutError)
    assert issubclass(RelayConnectionError, ConnectionError)
    # siblings stay siblings: a timeout is not a handshake failure, a closed socket is not a protocol error
    assert not issubclass(RelayTimeoutError, HandshakeError)
    assert not issubclass(ConnectionClosed, ProtocolError)
    assert not issubclass(HandshakeError, ValueError)


def test_builtin_catches() -> None:
    with pytest.raises(ValueError):
        raise ConfigurationError("bad path")
    with pytest.raises(TimeoutError):
        raise RelayTimeoutError("too slow")
    with pytest.raises(OSError):  # ConnectionError is an OSError
        raise RelayConnectionError("refused")


def test_errors_importable_from_the_package() -> None:
    for name in ("HybridConnectionError", "ConfigurationError", "HandshakeError", "AuthenticationError",
                 "AuthorizationError", "EndpointNotFoundError", "ListenerUnavailableError",
                 "ConnectionRejectedError", "ConnectionClosed", "ProtocolError", "RelayTimeoutError"):
        assert getattr(hybridconn, name) is getattr(hybridconn.exceptions, name)


@pytest.mark.parametrize(
    "status, cls",
    [
        (401, AuthenticationError),
        (403, AuthorizationError),
        (404, EndpointNotFoundError),
        (502, ListenerUnavailableError),
        (503, ListenerUnavailableError),
        (400, HandshakeError),
        (410, HandshakeError),
        (500, HandshakeError),
    ],
)
def test_error_for_status(status: int, cls: type) -> None:
    error = error_for_status(status, "Some description")
    assert type(error) is cls
    assert isinstance(error, HandshakeError)
    assert error.status_code == status and error.reason == "Some description"
    assert str(status) in str(error) and "Some description" in str(error)


def test_error_for_status_504_is_a_timeout() -> None:
    error = error_for_status(504, "Gateway Timeout TrackingId:abc-1_G2")
    assert isinstance(error, RelayTimeoutError) and isinstance(error, TimeoutError)
    assert error.status_code == 504  # type: ignore[attr-defined]
    assert error.tracking_id == "abc-1_G2"  # type: ignore[attr-defined]
    assert "504" in str(error)


def test_tracking_id_from_description() -> None:
    reason = ("Generic: Invalid authorization token signature. TrackingId:7a5b1e62-1c2d-4e1f-9c55-abcdef012345_G12, "
              "SystemTracker:contoso.servicebus.windows.net:hc1, Timestamp:2024-01-01T00:00:00")
    error = AuthenticationError(401, reason)
    assert error.tracking_id == "7a5b1e62-1c2d-4e1f-9c55-abcdef012345_G12"
    assert error_for_status(401, reason).tracking_id == error.tracking_id  # type: ignore[union-attr]
    # an explicit id wins, and shows in the message when the description lacks it
    explicit = EndpointNotFoundError(404, "Endpoint does not exist", tracking_id="tid-9")
    assert explicit.tracking_id == "tid-9" and "(TrackingId:tid-9)" in str(explicit)
    assert HandshakeError(400, "no id here").tracking_id is None
    assert HandshakeError(400, "TrackingId:").tracking_id is None


def test_handshake_messages() -> None:
    assert str(AuthenticationError(401, "ExpiredToken")) == "authentication failed: 401 ExpiredToken"
    assert str(AuthorizationError(403)) == "not authorized: 403"
    assert str(ListenerUnavailableError(502, "no listener")).startswith("no listener available: 502")
    assert str(ConnectionRejectedError(418, "teapot")) == "the listener rejected the connection: 418 teapot"
    assert str(HandshakeError()) == "the relay refused the handshake: handshake failed"
    assert str(HandshakeError(500, message="custom text")) == "custom text"
    # None is tolerated where a description is missing (e.g. a handshake without a reason phrase)
    assert HandshakeError(500, None).reason == ""  # type: ignore[arg-type]


def test_connection_closed() -> None:
    closed = ConnectionClosed(1008, "token expired")
    assert (closed.code, closed.reason) == (1008, "token expired")
    assert str(closed) == "connection closed (code 1008): token expired"
    assert not closed.clean
    assert ConnectionClosed(1000).clean and ConnectionClosed(1001, "going away").clean
    assert not ConnectionClosed(1006).clean and not ConnectionClosed().clean
    assert str(ConnectionClosed()) == "connection closed"
    assert ConnectionClosed(1011, None).reason == ""  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError(401, "bad TrackingId:t-1"),
        ConnectionRejectedError(403, "nope"),
        HandshakeError(500, "x", message="custom"),
        ConnectionClosed(1001, "bye"),
        ConfigurationError("bad"),
        RelayTimeoutError("slow"),
    ],
)
def test_errors_survive_pickle_and_copy(error: Exception) -> None:
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        for attr in ("status_code", "reason", "tracking_id", "code"):
            assert getattr(clone, attr, None) == getattr(error, attr, None)


def test_service_descriptions_are_scrubbed() -> None:
    reason = "Invalid token: SharedAccessSignature sr=x&sig=SECRETSIG&se=1&skn=k"
    for error in (AuthenticationError(401, reason), error_for_status(401, reason), error_for_status(504, reason),
                  ConnectionClosed(1008, reason), HandshakeError(400, message=reason)):
        assert "SECRETSIG" not in str(error) and "SECRETSIG" not in repr(error)
        assert "SECRETSIG" not in getattr(error, "reason", "")
