"""Each package's __init__ is its public API: __all__ is sorted, every name in it resolves
(the packages load their names on first use), and nothing else public is exported."""

import importlib

import pytest

_NOT_EXPORTS = {"TYPE_CHECKING", "annotations"}  # typing and __future__ helpers


@pytest.mark.parametrize("name", ["cleanroom", "normalize", "protocols"])
def test_all_is_sorted_and_exported(name):
    mod = importlib.import_module(name)
    assert list(mod.__all__) == sorted(mod.__all__)
    for attribute in mod.__all__:
        assert type(getattr(mod, attribute)).__name__ != "module", attribute
    public = {
        n
        for n, value in vars(mod).items()
        if not n.startswith("_") and n not in _NOT_EXPORTS and type(value).__name__ != "module"
    }
    assert set(mod.__all__) == public


@pytest.mark.parametrize("name", ["cleanroom", "normalize", "protocols"])
def test_an_unknown_name_is_an_attribute_error(name):
    assert not hasattr(importlib.import_module(name), "no_such_name")  # AttributeError only
