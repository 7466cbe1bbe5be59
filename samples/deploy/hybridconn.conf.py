"""hybridconn serve's settings for the systemd unit and the Dockerfile beside this file.

A config file is Python, read once at start and again on SIGHUP (reload). The
environment (HYBRIDCONN_<NAME>) and the command line override what it says.
Keep the connection string out of it: it holds the key (use the environment).
"""

import os

wsgi_app = os.environ.get("HYBRIDCONN_APP", "mysite.wsgi:application")

# Two cores: two processes, each with its own listener; the relay spreads requests over them.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 16
graceful_timeout = 30
max_requests = 10000
max_requests_jitter = 1000

accesslog = "-"  # stdout: journald or docker logs keeps it
errorlog = "-"
loglevel = "info"

health_file = "/run/hybridconn/health" if os.path.isdir("/run/hybridconn") else "/tmp/hybridconn.health"
metrics = os.environ.get("HYBRIDCONN_METRICS") or None  # e.g. "127.0.0.1:9100"
