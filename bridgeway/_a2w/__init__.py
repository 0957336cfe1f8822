"""ASGIToWSGI's internals: an ASGI app served under a WSGI server.

Imports only go down: this package uses the shared private modules at the top of
``bridgeway`` and ``bridgeway.errors``, never ``bridgeway._w2a`` or ``bridgeway._mix``
nor the public modules (``tests/test_import_graph.py`` checks it).
"""
