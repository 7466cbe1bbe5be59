"""Serve a Django project through a hybrid connection: add ``"hybridconn.contrib.django"`` to INSTALLED_APPS.

Then ``python manage.py relayserve`` serves ``settings.WSGI_APPLICATION`` as
``hybridconn serve`` would, with the same options; settings named
``HYBRIDCONN_<SETTING>`` (``HYBRIDCONN_CONNECTION_STRING``,
``HYBRIDCONN_WORKERS``, ``HYBRIDCONN_ACCESS_LOGFILE``, ...) take the config
file's place: the command line wins over the environment, which wins over
settings.py. A system check (``hybridconn.W001``) warns when ALLOWED_HOSTS
does not admit the relay's host.
"""

