"""azbridge's YAML configuration files (``hybridconn forward -f bridge.yml``), read into forwarding specs.

The keys are azbridge's (``AzureRelayConnectionString``, ``LocalForward[]``,
``RemoteForward[]`` with ``RelayName``, ``BindAddress``, ``BindPort``,
``PortName``, ``Host``, ``HostPort``, ``Http``, ``Bindings[]``, ...). Like
YamlDotNet's matching they are taken without regard to case, and the older
snake_case spellings of azbridge's CONFIG.md (``relay_name``, ``bind_address``,
``port``, ``hostport``) are the same keys. An unknown key is an error naming
the key and its line, never silently ignored (azbridge issue #115).
Keys azbridge parses but does not use (``GatewayPorts``, ``AddressFamily``,
...) are accepted and ignored, as azbridge ignores them.

Each forwarder becomes a spec string of ``hybridconn forward``'s own flags
(``-L``, ``-R``, ``-H``), so one parser decides what is valid.

Needs PyYAML (``pip install hybridconn[yaml]``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from ..exceptions import ConfigurationError

__all__ = ["BridgeConfig", "load_config", "parse_config"]

log: logging.Logger = logging.getLogger(__name__)

_TOP = {"azurerelayconnectionstring", "azurerelayendpoint", "azurerelaysharedaccesskeyname",
        "azurerelaysharedaccesskey", "azurerelaysharedaccesssignature", "bindaddress", "exitonforwardfailure",
        "keepaliveinterval", "loglevel", "logfilename", "localforward", "remoteforward", "connecttimeout"}
#: Parsed by azbridge and used by nothing (reference §1): accepted, ignored.
_IGNORED = {"addressfamily", "connectionattempts", "gatewayports", "compression", "compressionlevel",
            "remotehostname"}
_LOCAL = {"relayname", "connectionstring", "noauthentication", "bindaddress", "bindport", "port", "portname",
          "bindlocalsocket", "localsocket", "bindings", "hostname"}
_REMOTE = {"relayname", "connectionstring", "host", "hostport", "portname", "localsocket", "http", "insecure",
           "bindings"}
_TRUE = {"true", "yes", "on", "y", "1"}
_FALSE = {"false", "no", "off", "n", "0", ""}


@dataclass
class BridgeConfig:
    """What a configuration file asks for, as ``hybridconn forward`` flags."""

    connection_string: Optional[str] = None
    local: List[str] = field(default_factory=list)
    remote: List[str] = field(default_factory=list)
    http: List[str] = field(default_factory=list)
    insecure: bool = False
    connect_timeout: Optional[float] = None
    keepalive_interval: Optional[float] = None


def _key(name: str) -> str:
    return name.replace("_", "").replace("-", "").lower()


class _Reader:
    """Walks the composed YAML nodes, so every error can name its line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def where(self, node: Any) -> str:
        return f"{self.source}, line {node.start_mark.line + 1}"

    def mapping(self, node: Any, allowed: Set[str], what: str) -> Dict[str, Tuple[Any, Any]]:
        import yaml

        if not isinstance(node, yaml.MappingNode):
            raise ConfigurationError(f"{self.where(node)}: {what} must be a mapping of keys")
        out: Dict[str, Tuple[Any, Any]] = {}
        for key_node, value_node in node.value:
            name = str(key_node.value)
            key = _key(name)
            if key in _IGNORED:
                log.info("%s: %s is accepted and ignored (azbridge does not use it either)", self.where(key_node), name)
                continue
            if key not in allowed:
                raise ConfigurationError(f"{self.where(key_node)}: unknown key {name!r} in {what}")
            if key in out:
                raise ConfigurationError(f"{self.where(key_node)}: key {name!r} is given twice in {what}")
            out[key] = (key_node, value_node)
        return out

    def text(self, entry: Dict[str, Tuple[Any, Any]], key: str) -> Optional[str]:
        import yaml

        if key not in entry:
            return None
        key_node, node = entry[key]
        if not isinstance(node, yaml.ScalarNode):
            raise ConfigurationError(f"{self.where(node)}: {key_node.value} must be a single value")
        value = str(node.value).strip()
        return value if value and value not in ("~", "null") else None

    def flag(self, entry: Dict[str, Tuple[Any, Any]], key: str) -> bool:
        value = (self.text(entry, key) or "").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ConfigurationError(f"{self.where(entry[key][1])}: {entry[key][0].value} must be yes/no, not {value!r}")

    def seconds(self, entry: Dict[str, Tuple[Any, Any]], key: str) -> Optional[float]:
        value = self.text(entry, key)
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"{self.where(entry[key][1])}: {entry[key][0].value} must be a number of "
                                     f"seconds, not {value!r}") from None

    def items(self, entry: Dict[str, Tuple[Any, Any]], key: str) -> List[Any]:
        import yaml

        if key not in entry:
            return []
        node = entry[key][1]
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise ConfigurationError(f"{self.where(node)}: {entry[key][0].value} must be a list")
        return list(node.value)


def load_config(path: str) -> BridgeConfig:
    """Read an azbridge YAML file; :class:`ConfigurationError` names the key and line that is wrong."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the configuration file {path}: {exc.strerror or exc}") from exc
    return parse_config(text, source=path)


def parse_config(text: str, source: str = "<config>") -> BridgeConfig:
    """:func:`load_config` on text."""
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - the [yaml] extra is installed in the tests
        raise ConfigurationError("reading a YAML configuration needs PyYAML: pip install 'hybridconn[yaml]'") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source}: not valid YAML: {exc}") from exc
    config = BridgeConfig()
    if root is None:
        return config
    reader = _Reader(source)
    top = reader.mapping(root, _TOP, "the configuration")
    config.connection_string = reader.text(top, "azurerelayconnectionstring")
    if reader.text(top, "azurerelayendpoint") or reader.text(top, "azurerelaysharedaccesssignature"):
        _also_endpoint(config, reader, top)
    config.connect_timeout = reader.seconds(top, "connecttimeout")
    config.keepalive_interval = reader.seconds(top, "keepaliveinterval")
    default_bind = reader.text(top, "bindaddress")
    for node in reader.items(top, "localforward"):
        _local(config, reader, reader.mapping(node, _LOCAL, "a LocalForward entry"), default_bind)
    for node in reader.items(top, "remoteforward"):
        _remote(config, reader, reader.mapping(node, _REMOTE, "a RemoteForward entry"))
    return config


def _also_endpoint(config: BridgeConfig, reader: _Reader, top: Dict[str, Tuple[Any, Any]]) -> None:
    """Build a connection string from AzureRelayEndpoint and the key fields, when given apart."""
    endpoint = reader.text(top, "azurerelayendpoint")
    parts = [f"Endpoint={endpoint}"] if endpoint else []
    for key, field_name in (("azurerelaysharedaccesskeyname", "SharedAccessKeyName"),
                            ("azurerelaysharedaccesskey", "SharedAccessKey"),
                            ("azurerelaysharedaccesssignature", "SharedAccessSignature")):
        value = reader.text(top, key)
        if value:
            parts.append(f"{field_name}={value}")
    if config.connection_string and endpoint:
        kept = [p for p in config.connection_string.split(";") if p and not p.lower().startswith("endpoint=")]
        parts = parts[:1] + kept + parts[1:]
    config.connection_string = ";".join(parts)


def _unsupported(reader: _Reader, entry: Dict[str, Tuple[Any, Any]], keys: Tuple[str, ...]) -> None:
    for key in keys:
        if key not in entry:
            continue
        given = reader.flag(entry, key) if key == "noauthentication" else bool(reader.text(entry, key))
        if given:
            raise ConfigurationError(f"{reader.where(entry[key][0])}: {entry[key][0].value} is not supported by "
                                     "hybridconn forward yet")


def _bindings(reader: _Reader, entry: Dict[str, Tuple[Any, Any]], allowed: Set[str], what: str) -> List[Dict[str, Any]]:
    """The entry itself, or each of its ``Bindings`` (which share its RelayName)."""
    subs = [reader.mapping(n, allowed - {"relayname", "bindings", "connectionstring"}, f"a {what} binding")
            for n in reader.items(entry, "bindings")]
    return subs or [entry]


def _relay(reader: _Reader, entry: Dict[str, Tuple[Any, Any]], what: str, node: Any) -> str:
    relay = reader.text(entry, "relayname")
    if not relay:
        raise ConfigurationError(f"{reader.where(node)}: a {what} entry needs a RelayName")
    return relay


def _local(
    config: BridgeConfig, reader: _Reader, entry: Dict[str, Tuple[Any, Any]], default_bind: Optional[str]
) -> None:
    first = next(iter(entry.values()))[0]
    relay = _relay(reader, entry, "LocalForward", first)
    _unsupported(reader, entry, ("connectionstring", "bindlocalsocket", "localsocket", "noauthentication"))
    for binding in _bindings(reader, entry, _LOCAL, "LocalForward"):
        _unsupported(reader, binding, ("bindlocalsocket", "localsocket"))
        port = reader.text(binding, "bindport") or reader.text(binding, "port")
        if not port:
            raise ConfigurationError(f"{reader.where(first)}: LocalForward {relay!r} needs a BindPort")
        bind = reader.text(binding, "bindaddress") or default_bind or "127.0.0.1"
        bind = f"[{bind}]" if ":" in bind else bind
        name = reader.text(binding, "portname")
        config.local.append(f"{bind}:{port}:{relay}" + (f"/{name}" if name else ""))


def _remote(config: BridgeConfig, reader: _Reader, entry: Dict[str, Tuple[Any, Any]]) -> None:
    first = next(iter(entry.values()))[0]
    relay = _relay(reader, entry, "RemoteForward", first)
    _unsupported(reader, entry, ("connectionstring", "localsocket"))
    config.insecure = config.insecure or ("insecure" in entry and reader.flag(entry, "insecure"))
    for binding in _bindings(reader, entry, _REMOTE, "RemoteForward"):
        _unsupported(reader, binding, ("localsocket",))
        host = reader.text(binding, "host") or "localhost"
        port = reader.text(binding, "hostport")
        if not port:
            raise ConfigurationError(f"{reader.where(first)}: RemoteForward {relay!r} needs a HostPort")
        http = (reader.text(binding, "http") or "").lower()
        if http and http not in _FALSE:
            scheme = "https" if http == "https" else "http"
            config.http.append(f"{relay}:{scheme}/{host}:{port}")
            continue
        name = reader.text(binding, "portname")
        host = f"[{host}]" if ":" in host else host
        config.remote.append(f"{relay}" + (f"/{name}" if name else "") + f":{host}:{port}")
