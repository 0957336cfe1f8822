"""WSGIToASGI's internals: a WSGI app served under an ASGI server.

Imports only go down: this package uses the shared private modules at the top of
``bridgeway`` and ``bridgeway.errors``, never ``bridgeway._a2w`` or ``bridgeway._mix``
nor the public modules (``tests/test_import_graph.py`` checks it).
"""
