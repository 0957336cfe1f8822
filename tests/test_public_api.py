from __future__ import annotations

import bridgeway


def test_all_is_honest() -> None:
    public = {name for name in dir(bridgeway) if not name.startswith("_")}
    modules = {"errors", "wsgi_to_asgi", "asgi_to_wsgi", "detect", "dispatch", "cli", "target"}
    assert set(bridgeway.__all__) == public - modules
    for name in bridgeway.__all__:
        assert getattr(bridgeway, name).__module__.startswith("bridgeway")


def test_py_typed_is_shipped() -> None:
    from importlib.resources import files

    assert files("bridgeway").joinpath("py.typed").is_file()
