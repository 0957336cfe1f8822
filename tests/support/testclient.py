"""What the installed Starlette ``TestClient`` can do."""

from __future__ import annotations

import starlette.testclient

# Whether the TestClient hands a response over while the app still sends (its
# streaming _TestClientResponseStream, Starlette 1.10) rather than once the app has
# returned (Starlette 1.7, the pin on Python 3.10): tests of a response that is
# available before its body, or of a client that closes a stream early, need it.
STREAMING_TEST_CLIENT = hasattr(starlette.testclient, "_TestClientResponseStream")
