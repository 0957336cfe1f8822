"""Live-server test harness: servers as subprocesses, probe apps, a raw-socket client."""
