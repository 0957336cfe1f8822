"""The dispatchers' internals (``bridgeway.dispatch``): WSGI and ASGI apps mixed.

Imports only go down: this package uses the shared private modules at the top of
``bridgeway`` and ``bridgeway.errors``, never ``bridgeway._w2a`` or ``bridgeway._a2w``
nor the public modules (``tests/test_import_graph.py`` checks it).
"""
