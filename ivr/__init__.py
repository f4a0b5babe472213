"""callcore IVR: YAML dialplans walked by a pure engine over the ``Channel`` port.

Layout (same file names as the other domain packages):

* ``channel.py`` / ``ports.py`` — the contracts (Channel; Router, CallbackSink).
* ``loader.py`` → ``flow.py`` (schema, typed model) → ``checker.py`` (meaning checks).
* ``expressions.py`` (safe expression language), ``schedule.py`` (business hours).
* ``engine.py`` — walks a flow; ``console.py`` — the console/scripted channel.
* ``lookup.py`` — the LookupClient port (httpx, fixture, phone directory).
* ``registry.py`` — versioned hot-reloaded flow sets; ``repository.py`` + ``models.py`` — storage.
* ``service.py`` — ``IvrService`` / ``build_ivr_service``; ``routes.py`` — HTTP; ``cli.py`` — ``callcore dialplan``.
* ``agi/`` — FastAGI and classic AGI adapters.

See docs/dialplans.md.
"""
