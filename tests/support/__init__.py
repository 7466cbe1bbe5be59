"""Helpers the test suite shares, imported as ``tests.support.<module>``.

Every directory under tests/ is a package, so pytest (its default "prepend" import mode)
puts the repository root on sys.path and imports test modules by their dotted names
(``tests.listener.test_listener_http``): helpers need no unique basenames, and no test or
conftest edits sys.path to find them. Fixtures are in tests/conftest.py (shared by all
directories: ``relay``, ``proxy``, ``start_process``, ``clean_proxy_env``, ``no_leaks``)
and in each directory's conftest.py (that directory's own).

processes        ChildProcess: a child process (hybridconn CLI, sample, Node peer) with its
                 output collected, bounded waits and a bounded stop; run_python, run_cli
node_peers       Microsoft's Node clients as peers (NodePeer on ChildProcess), payloads
proxy            ConnectProxy: CONNECT and absolute-form proxying, faults (cut_after, hold)
plain_clients    the relay through plain requests / websocket-client: Sender, Control, token
endpoints        hybridconn listeners and clients on an emulator, handlers, StatusLog
traffic          background traffic that classifies every outcome; PersistentSocket
tiny_listener    TinyListener: a listener written straight on the protocol, for the sender
scripted_server  ScriptedServer: a relay stand-in answering what a test scripts
fake_relay       FakeRelay: takes a listener's control channel and writes any frame to it
tcp_echo         EchoServer and byte-checked TCP round trips (forwarding tests, bench/)
wsgi_requests    RelayedRequests for calling WSGI apps directly, and reading their answers
measure          hybridconn threads, open sockets, RSS, the fd limit; wait_until
sockets          free_port, reading an HTTP head, shutting sockets, the WebSocket accept value
"""
