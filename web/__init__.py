"""The browser UI served by callcore: agent desktop, supervisor wallboard, admin screens.

Python side (this package): the static files and ``/docs`` (:mod:`web.routes`), the UI's
configuration — disposition codes, wallboard thresholds, labels — (:mod:`web.models`,
``web/config.yaml``), and the wallboard feed (:mod:`web.wallboard` pure bookkeeping,
:mod:`web.service` the owned bus task, :mod:`web.notifier` + ``web/events.yml``).
Front end: ``web/static/`` — plain ES modules, no build step (see ARCHITECTURE.md).
"""
