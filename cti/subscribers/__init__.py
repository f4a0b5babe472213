"""Reactions to CTI changes, one module each, registered on the
:class:`cti.dispatcher.ChangeDispatcher` by the CTI assembly (``cti/service.py``
``CtiService._subscribe``) — add one module and one line there (or, from another
package, one ``cti.dispatcher.subscribe(...)`` line in ``callcore/wiring.py``)."""
