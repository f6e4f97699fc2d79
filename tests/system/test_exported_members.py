"""Each package's __init__ is its public API: __all__ is sorted and matches what is exported."""

import importlib

import pytest


@pytest.mark.parametrize("name", ["cleanroom", "normalize", "protocols"])
def test_all_is_sorted_and_exported(name):
    mod = importlib.import_module(name)
    assert list(mod.__all__) == sorted(mod.__all__)
    public = {
        n
        for n in dir(mod)
        if not n.startswith("_") and type(getattr(mod, n)).__name__ != "module"
    }
    assert set(mod.__all__) == public
