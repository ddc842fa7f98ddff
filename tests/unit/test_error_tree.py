"""One error tree: every exception class that ships lives in common/domain/errors.py (the
pure rules raise it too), and the tree its docstring draws is the tree the classes make."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

from common.domain import errors

SHIPPED = ("common", "entry", "planner", "executor", "finalizer", "ops")
DRAWN = re.compile(r"^(?P<lead>[ │├└─]*)(?P<name>[A-Z]\w+)\b")


def shipped_modules() -> list[str]:
    names: list[str] = []
    for package in SHIPPED:
        root = importlib.import_module(package)
        names.append(package)
        for found in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            if not found.name.endswith("__main__"):
                names.append(found.name)
    return names


def exception_classes(module_name: str) -> set[str]:
    module = importlib.import_module(module_name)
    return {
        name
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == module_name
    }


def drawn_parents() -> dict[str, str]:
    """Each class the docstring draws, and the class it is drawn under."""
    assert errors.__doc__
    parents: dict[str, str] = {}
    path: list[tuple[int, str]] = []
    for line in errors.__doc__.splitlines():
        # The tree is indented by four spaces; the prose around it is not.
        match = DRAWN.match(line[4:]) if line.startswith("    ") else None
        if not match:
            continue
        depth = len(match["lead"])
        while path and path[-1][0] >= depth:
            path.pop()
        if path:
            parents[match["name"]] = path[-1][1]
        path.append((depth, match["name"]))
    return parents


def test_no_shipped_module_but_errors_py_defines_an_exception() -> None:
    elsewhere = {
        f"{module}.{name}"
        for module in shipped_modules()
        if module != errors.__name__
        for name in exception_classes(module)
    }
    assert not elsewhere, f"move these to common/domain/errors.py: {sorted(elsewhere)}"


def test_the_docstring_draws_every_error_class_under_its_parent() -> None:
    classes = {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.WorthyError)
    }
    drawn = drawn_parents()
    assert set(drawn) | {"WorthyError"} == set(classes)
    for name, parent in drawn.items():
        assert classes[name].__bases__[0].__name__ == parent, name
