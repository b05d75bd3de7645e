import pytest

from crossdistill.registry import Registry, UnknownNameError


def test_register_get_names_and_helpful_error():
    reg: Registry[int] = Registry("widget")
    reg.register("b")(2)
    reg.register("a")(1)
    assert reg.get("a") == 1
    assert reg.names() == ["a", "b"]
    assert "a" in reg
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; available: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(3)
