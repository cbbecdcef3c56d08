"""House rules that Equinox no longer enforces (STYLE.md rule 1): every Module is
abstract or final, and nothing calls `super()`; and a long function says why."""

import ast
import importlib
import inspect
import pathlib
import pkgutil
import textwrap

import equinox as eqx
import pytest

import gridflex


def _modules():
    for info in pkgutil.walk_packages(gridflex.__path__, "gridflex."):
        yield importlib.import_module(info.name)


def _gridflex_module_classes():
    seen = {}
    for module in _modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, eqx.Module) and obj.__module__.startswith("gridflex"):
                seen[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return seen


def _is_abstract(cls) -> bool:
    return inspect.isabstract(cls) or cls.__name__.startswith("Abstract")


def test_modules_are_abstract_or_final():
    classes = _gridflex_module_classes()
    assert len(classes) > 20
    for name, cls in classes.items():
        # Abstract means named so and holding abstract methods, and the reverse.
        named = cls.__name__.startswith("Abstract")
        assert named == inspect.isabstract(cls), name
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("gridflex") and issubclass(base, eqx.Module):
                # a gridflex base must be abstract: concrete classes are final
                assert _is_abstract(base), f"{name} subclasses concrete {base.__name__}"
        if named:
            # refused for being abstract (not for a missing field: also a TypeError)
            with pytest.raises(TypeError, match="Can't instantiate abstract class"):
                cls()


def test_no_concrete_method_is_overridden():
    for name, cls in _gridflex_module_classes().items():
        for attr, value in vars(cls).items():
            if attr.startswith("__") or not (
                callable(value) or isinstance(value, property)
            ):
                continue
            for base in cls.__mro__[1:]:
                if not base.__module__.startswith("gridflex"):
                    continue
                inherited = vars(base).get(attr)
                if inherited is not None and (
                    callable(inherited) or isinstance(inherited, property)
                ):
                    abstract = getattr(inherited, "__isabstractmethod__", False)
                    assert abstract, f"{name}.{attr} overrides a concrete method"


def test_modules_do_not_call_super():
    # (Exceptions may: they are not Modules.)
    for name, cls in _gridflex_module_classes().items():
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "super"
        ]
        assert not calls, name


def test_a_function_over_80_lines_says_why():
    # over 80 lines (its docstring counted), a function carries a `# Long:` comment
    # at the top of its body saying why it is not split
    src = pathlib.Path(gridflex.__file__).parent
    unexplained = []
    for path in sorted(src.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if node.end_lineno - node.lineno + 1 <= 80:  # pyright: ignore[reportOptionalOperand]
                continue
            head = lines[node.lineno - 1 : node.body[min(1, len(node.body) - 1)].lineno]
            if not any(line.strip().startswith("# Long:") for line in head):
                unexplained.append(f"{path.relative_to(src)}::{node.name}")
    assert not unexplained, unexplained
