"""The machinery behind ``hybridconn serve``: an arbiter and its worker processes.

- :mod:`.settings` and :mod:`.sources`: every setting, and how the command line, the
  environment and a config file combine;
- :mod:`.arbiter` and :mod:`.workers`: the arbiter process and the workers it keeps alive;
- :mod:`.worker`: one worker process (a listener serving the WSGI application);
- :mod:`.accesslog`, :mod:`.logs`: the access log and the error log;
- :mod:`.metrics`, :mod:`.exposition`, :mod:`.health`: counts, ``--metrics`` and ``--health-file``;
- :mod:`.embedded`: the relay emulator ``serve`` starts when given no connection string;
- :mod:`.app`: importing ``MODULE:APP``.
"""
