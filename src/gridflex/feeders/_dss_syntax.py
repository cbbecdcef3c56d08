"""The OpenDSS command language, read without OpenDSS.

A `.dss` script is a list of commands (`New`, `Edit`, `~`, `Set`, `Redirect`, ...),
each a verb followed by `key=value` or positional parameters. This module turns a
script (and the files it redirects to) into `Command`s that remember the file and line
they came from, and converts parameter text into numbers, arrays, matrices and bus
specs the way OpenDSS does, so that `_dss_native` can give OpenDSS's element models the
same data.

Errors in the input are collected, not raised one by one: `parse_file` reads every file,
then raises one `DssError` that lists each problem with its file, line, element and
property (the validation style of power-grid-model), so a user fixes them in one pass.
"""

import dataclasses
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np


__all__ = [
    "Command",
    "DssError",
    "DssProblem",
    "Param",
    "parse_file",
    "parse_text",
    "rpn",
    "to_array",
    "to_bool",
    "to_bus",
    "to_float",
    "to_int",
    "to_matrix",
    "to_strings",
]


# --- errors ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class DssProblem:
    """One problem in an OpenDSS input, with where it is.

    - `message`: what is wrong and, where possible, how to fix it.
    - `file`, `line`: the script line (1-based) the problem comes from.
    - `element`: the element it concerns, `Class.name` (e.g. `Line.650632`).
    - `property`: the property it concerns (e.g. `units`).
    """

    message: str
    file: str | None = None
    line: int | None = None
    element: str | None = None
    property: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(
                self.file if self.line is None else f"{self.file}, line {self.line}"
            )
        if self.element:
            where.append(self.element)
        if self.property:
            where.append(f"property {self.property!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class DssError(ValueError):
    """An OpenDSS input that gridflex cannot read; `problems` lists every problem found.

    The message names, for each problem, the file, the line, the element (`Class.name`)
    and the property, so the input can be fixed without a debugger.
    """

    def __init__(self, problems: Sequence[DssProblem]):
        self.problems = tuple(problems)
        n = len(self.problems)
        head = (
            "OpenDSS input has a problem:"
            if n == 1
            else f"OpenDSS input has {n} problems:"
        )
        super().__init__(head + "".join(f"\n  - {p}" for p in self.problems))

    def __reduce__(self):
        return (type(self), (self.problems,))


class _ValueProblem(ValueError):
    """A value that cannot be read; the caller adds file, line, element and property."""


# --- commands -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of a command: `key=value` or a positional `value` (`key is None`).

    `key` is lower case; `value` is the text with its enclosing quotes or brackets
    removed; `quoted` says whether it had them (OpenDSS reads a quoted number as
    in-line RPN math, e.g. `XHL=(8 1000 /)`).
    """

    key: str | None
    value: str
    quoted: bool = False


@dataclasses.dataclass(frozen=True)
class Command:
    """One OpenDSS command.

    - `verb`: the command, lower case and unabbreviated (`new`, `edit`, `more` for `~`,
        `set`, `batchedit`, `open`, ...; `redirect`/`compile` only from `parse_text`,
        since `parse_file` replaces them by the commands of the file they name).
    - `target`: the object the command names (`Line.L1`, `circuit.ieee13`,
        `load..*`), as spelled in the file, or `None`.
    - `params`: the parameters after the target.
    - `file`, `line`: where the command is (1-based line).
    - `element`: the element it acts on, for messages: the target, or for `~` lines
        the element the previous `New`/`Edit` named (`Vsource.source` after
        `New circuit.X`).
    """

    verb: str
    target: str | None
    params: tuple[Param, ...]
    file: str
    line: int
    element: str | None = None

    def problem(self, message: str, prop: str | None = None) -> DssProblem:
        """A `DssProblem` located at this command."""
        return DssProblem(message, self.file, self.line, self.element, prop)


# OpenDSS's executive commands, in OpenDSS's order: an abbreviation means the first
# command that starts with it (`calcv` is `calcvoltagebases`), as in OpenDSS.
_VERBS = (
    "new", "edit", "more", "m", "~", "select", "save", "show", "solve", "enable",
    "disable", "plot", "reset", "compile", "set", "dump", "open", "close", "//",
    "redirect", "help", "quit", "?", "next", "panel", "sample", "clear", "about",
    "calcvoltagebases", "setkvbase", "buildy", "get", "init", "export", "fileedit",
    "voltages", "currents", "powers", "seqvoltages", "seqcurrents", "seqpowers",
    "losses", "phaselosses", "cktlosses", "allocateloads", "formedit", "totals",
    "capacity", "classes", "userclasses", "zsc", "zsc10", "zscrefresh", "ysc",
    "puvoltages", "varvalues", "varnames", "buscoords", "makebuslist", "makeposseq",
    "reduce", "interpolate", "alignfile", "top", "rotate", "vdiff", "summary",
    "distribute", "di_plot", "comparecases", "yearlycurves", "cd", "visualize",
    "closedi", "doscmd", "estimate", "reconductor", "_initsnap", "_solvenocontrol",
    "_samplecontrols", "_docontrolactions", "_showcontrolqueue", "_solvedirect",
    "_solvepflow", "addbusmarker", "uuids", "setloadandgenkv", "cvrtloadshapes",
    "nodediff", "rephase", "setbusxy", "updatestorage", "obfuscate", "latlongcoords",
    "batchedit", "pstcalc", "variable", "reprocessbuses", "clearbusmarkers",
    "relcalc", "var", "cleanup", "finishtimestep", "nodelist", "connect",
    "disconnect", "remove",
)  # fmt: skip
_ALIASES = {"m": "more", "~": "more"}
# Commands whose first parameter names an object (`New Line.x`, `Open Line.x 2`).
_TARGETED = {"new", "edit", "select", "batchedit", "open", "close", "enable", "disable"}


def _resolve_verb(word: str) -> str | None:
    word = word.lower()
    if word in _VERBS:
        return _ALIASES.get(word, word)
    for verb in _VERBS:
        if verb.startswith(word):
            return _ALIASES.get(verb, verb)
    return None


# --- tokens ---------------------------------------------------------------------------

_CLOSE = {'"': '"', "'": "'", "[": "]", "(": ")", "{": "}"}


def _strip_comment(text: str) -> str:
    """The text before a `!` or `//` that is not inside quotes or brackets."""
    depth: list[str] = []
    for i, ch in enumerate(text):
        if depth:
            if ch == depth[-1]:
                depth.pop()
            elif ch in "[({" and depth[-1] in "])}":
                depth.append(_CLOSE[ch])
            continue
        if ch in _CLOSE:
            depth.append(_CLOSE[ch])
        elif ch == "!" or text.startswith("//", i):
            return text[:i]
    return text


def _read_quoted(text: str, i: int) -> tuple[str, int]:
    """The text inside the quote or bracket opening at `text[i]`, and the index after.

    Brackets nest (`[(1 2 +) 3]`); quotes do not.
    """
    close = _CLOSE[text[i]]
    depth = 1
    j = i + 1
    while j < len(text):
        ch = text[j]
        if ch == close and (close in "\"'" or depth == 1):
            return text[i + 1 : j], j + 1
        if close not in "\"'":
            if ch == text[i]:
                depth += 1
            elif ch == close:
                depth -= 1
        j += 1
    raise _ValueProblem(f"unbalanced {text[i]!r}: no closing {close!r} on this line")


def _tokens(text: str) -> Iterator[tuple[str, bool, bool]]:
    """Split a line into `(text, quoted, followed_by_equals)` tokens.

    Whitespace and commas separate tokens; `=` (with optional spaces around it) ends a
    parameter name.
    """
    i, n = 0, len(text)
    while True:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            return
        if text[i] == "=":
            raise _ValueProblem("'=' without a property name before it")
        if text[i] in _CLOSE:
            token, i = _read_quoted(text, i)
            quoted = True
        else:
            j = i
            while j < n and not (text[j].isspace() or text[j] in ",="):
                j += 1
            token, i, quoted = text[i:j], j, False
        j = i
        while j < n and text[j].isspace():
            j += 1
        if j < n and text[j] == "=" and not quoted:
            i = j + 1
            yield token, quoted, True
        else:
            yield token, quoted, False


def _params(text: str) -> list[Param]:
    """The `key=value` and positional parameters on a line."""
    out: list[Param] = []
    key: str | None = None
    for token, quoted, is_key in _tokens(text):
        if key is not None:
            if is_key:  # `a= b=1`: `a` has an empty value
                out.append(Param(key, "", False))
                key = token.lower()
                continue
            out.append(Param(key, token, quoted))
            key = None
        elif is_key:
            key = token.lower()
        else:
            out.append(Param(None, token, quoted))
    if key is not None:
        out.append(Param(key, "", False))
    return out


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """`(line number, text without comments)` for each line with something on it.

    A line that starts with `/*` opens a block comment that ends with the line holding
    `*/`; both lines and all between are skipped, as OpenDSS does.
    """
    in_block = False
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if in_block or stripped.startswith("/*"):
            in_block = "*/" not in (stripped[2:] if not in_block else stripped)
            continue
        line = _strip_comment(raw).strip()
        if line:
            yield number, line


def parse_text(text: str, file: str = "<string>") -> list[Command]:
    """Parse an OpenDSS script into commands, leaving `Redirect`/`Compile` in place.

    **Arguments:**

    - `text`: the script.
    - `file`: the name to give in messages.

    **Returns:** the commands, in order.

    **Raises:** `DssError` listing every syntax problem in the text.
    """
    commands, problems = _parse_text(text, file)
    if problems:
        raise DssError(problems)
    return commands


def _parse_text(text: str, file: str) -> tuple[list[Command], list[DssProblem]]:
    commands: list[Command] = []
    problems: list[DssProblem] = []
    current: str | None = None  # the element a `~` line continues
    for number, line in _logical_lines(text):
        try:
            command = _parse_line(line, file, number, current)
        except _ValueProblem as e:
            problems.append(
                DssProblem(str(e), file, number, _guess_element(line, current))
            )
            continue
        if command.verb in ("new", "edit", "select") and command.target is not None:
            current = command.element
        elif command.verb == "clear":
            current = None
        commands.append(command)
    return commands, problems


def _guess_element(line: str, current: str | None) -> str | None:
    """The element a line that cannot be parsed is about, for its error message."""
    if line.startswith("~"):
        return current
    words = line.split()
    first = words[0].split("=")[0]
    if "." in first and _resolve_verb(first) is None:  # `Line.l1.length=...`
        return first.rpartition(".")[0]
    verb = _resolve_verb(first)
    if verb == "more":
        return current
    if verb in ("new", "edit", "select") and len(words) > 1:
        target = words[1].removeprefix("object=").removeprefix("Object=")
        if "." in target and "=" not in target:
            return "Vsource.source" if target.lower().startswith("circuit.") else target
    return None


def _parse_line(line: str, file: str, number: int, current: str | None) -> Command:
    if line.startswith("~"):
        return Command("more", None, tuple(_params(line[1:])), file, number, current)
    params = _params(line)
    first = params[0]
    if first.key is not None:
        # `Transformer.reg1.wdg=2 tap=1.0`: an edit of the object before the last dot.
        if "." not in first.key or _resolve_verb(first.key) is not None:
            raise _ValueProblem(f"a line must start with a command, not {first.key!r}=")
        target, _, prop = first.key.rpartition(".")
        original = line[: len(target)]  # keep the file's spelling for messages
        rest = (Param(prop, first.value, first.quoted), *params[1:])
        return Command("edit", original, rest, file, number, original)
    verb = _resolve_verb(first.value) if not first.quoted else None
    if verb is None:
        raise _ValueProblem(
            f"unknown command {first.value!r}; see the OpenDSS command reference"
        )
    rest = params[1:]
    target = None
    if verb in _TARGETED and rest:
        if rest[0].key is None:
            target, rest = rest[0].value, rest[1:]
        elif rest[0].key == "object":
            target, rest = rest[0].value, rest[1:]
    if verb in ("new", "edit", "select", "batchedit") and target is None:
        raise _ValueProblem(f"{verb!r} needs an object, e.g. '{verb} Line.L1 ...'")
    if verb == "more":
        return Command("more", None, tuple(rest), file, number, current)
    element = target if verb in ("new", "edit", "select") else None
    if element is not None and element.lower().startswith("circuit."):
        element = "Vsource.source"  # `New circuit.X` defines (and edits) the source
    return Command(verb, target, tuple(rest), file, number, element)


# --- files ----------------------------------------------------------------------------


def _find_file(path: Path) -> Path | None:
    """`path`, or a file whose name differs from it only in case (OpenDSS scripts are
    often written on Windows, where `IEEELineCodes.dss` finds `IEEELineCodes.DSS`)."""
    if path.is_file():
        return path
    folder = path.parent
    if folder.is_dir():
        matches = [p for p in folder.iterdir() if p.name.lower() == path.name.lower()]
        if len(matches) == 1 and matches[0].is_file():
            return matches[0]
    return None


def _read(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:  # scripts saved by Windows editors
        return data.decode("latin-1")


def parse_file(path: str | Path) -> list[Command]:
    """Parse an OpenDSS script and every file it redirects to.

    `Redirect file` and `Compile file` are replaced by the commands of `file`, read
    relative to the folder of the script that names it. As in OpenDSS, `Compile` also
    makes that folder the one later relative paths in the calling script refer to.

    **Arguments:**

    - `path`: the master script.

    **Returns:** the commands of all files, in execution order, each with the file and
    line it came from.

    **Raises:** `DssError` listing every syntax problem and every missing file.
    """
    problems: list[DssProblem] = []
    commands: list[Command] = []
    master = Path(path)
    found = _find_file(master)
    if found is None:
        raise DssError([DssProblem(f"file not found: {master}")])
    _expand(found, commands, problems, ())
    if problems:
        raise DssError(problems)
    return commands


def _expand(
    path: Path, out: list[Command], problems: list[DssProblem], stack: tuple[Path, ...]
) -> None:
    try:
        text = _read(path)
    except OSError as e:
        problems.append(DssProblem(f"cannot read the file: {e}", str(path)))
        return
    commands, errors = _parse_text(text, str(path))
    problems.extend(errors)
    folder = path.parent
    stack = (*stack, path.resolve())
    for command in commands:
        if command.verb not in ("redirect", "compile"):
            out.append(command)
            continue
        names = [p.value for p in command.params if p.key in (None, "file")]
        if not names or not names[0].strip():
            problems.append(command.problem(f"{command.verb} needs a file name"))
            continue
        wanted = folder / names[0].strip()
        found = _find_file(wanted)
        if found is None:
            problems.append(command.problem(f"file not found: {wanted}"))
            continue
        if found.resolve() in stack:
            problems.append(command.problem(f"{found.name} redirects to itself"))
            continue
        _expand(found, out, problems, stack)
        if command.verb == "compile":
            folder = found.parent


# --- values ---------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _unwrap(text: str) -> str:
    """`text` without one pair of enclosing quotes or brackets (`[1 2 3]` -> `1 2 3`),
    so the helpers accept a value as written in a file or as `Param.value` holds it."""
    text = text.strip()
    if text and text[0] in _CLOSE:
        try:
            inner, end = _read_quoted(text, 0)
        except _ValueProblem:
            return text
        if end == len(text):
            return inner.strip()
    return text


def _number(token: str) -> float | None:
    return float(token) if _NUMBER.match(token) else None


def _items(text: str) -> list[str]:
    """The items of an array written as `1 2 3`, `1, 2, 3` or with quoted items."""
    return [token for token, _, _ in _tokens(text)]


def rpn(text: str) -> float:
    """Evaluate OpenDSS in-line math in reverse Polish notation, e.g. `8 1000 /`.

    Binary operators act on the two numbers last pushed (`y x -` is `y - x`);
    functions take degrees for angles, as OpenDSS's RPN calculator does. Supported:
    `+ - * / ^ sqr sqrt inv ln exp log10 sin cos tan asin acos atan atan2 pi swap
    rollup rolldn`.
    """
    text = _unwrap(text)
    stack: list[float] = []

    def pop() -> float:
        if not stack:
            raise _ValueProblem(f"RPN expression {text!r} runs out of operands")
        return stack.pop()

    unary = {
        "sqr": lambda x: x * x,
        "sqrt": math.sqrt,
        "inv": lambda x: 1.0 / x,
        "ln": math.log,
        "exp": math.exp,
        "log10": math.log10,
        "sin": lambda x: math.sin(math.radians(x)),
        "cos": lambda x: math.cos(math.radians(x)),
        "tan": lambda x: math.tan(math.radians(x)),
        "asin": lambda x: math.degrees(math.asin(x)),
        "acos": lambda x: math.degrees(math.acos(x)),
        "atan": lambda x: math.degrees(math.atan(x)),
    }
    binary = {
        "+": lambda y, x: y + x,
        "-": lambda y, x: y - x,
        "*": lambda y, x: y * x,
        "/": lambda y, x: y / x,
        "^": lambda y, x: y**x,
        "atan2": lambda y, x: math.degrees(math.atan2(y, x)),
    }
    tokens = text.split()
    if not tokens:
        raise _ValueProblem("expected a number, found nothing")
    for token in tokens:
        op = token.lower()
        value = _number(token)
        try:
            if value is not None:
                stack.append(value)
            elif op == "pi":
                stack.append(math.pi)
            elif op in unary:
                stack.append(float(unary[op](pop())))
            elif op in binary:
                x, y = pop(), pop()
                stack.append(float(binary[op](y, x)))
            elif op == "swap":
                x, y = pop(), pop()
                stack.extend((x, y))
            elif op == "rollup" and stack:
                stack.insert(0, stack.pop())
            elif op == "rolldn" and stack:
                stack.append(stack.pop(0))
            else:
                raise _ValueProblem(
                    f"{token!r} is not a number"
                    + (
                        ""
                        if len(tokens) == 1
                        else f" nor an RPN operator (in {text!r})"
                    )
                )
        except (ArithmeticError, ValueError, TypeError) as e:
            if isinstance(e, _ValueProblem):
                raise
            raise _ValueProblem(
                f"RPN expression {text!r} fails at {token!r}: {e}"
            ) from None
    result = stack[-1] if stack else math.nan
    if not math.isfinite(result):
        raise _ValueProblem(f"{text!r} does not give a finite number")
    return result


def to_float(text: str) -> float:
    """A number: `4.16`, `.48`, `1e-4`, or in-line RPN math such as `8 1000 /`."""
    text = _unwrap(text)
    value = _number(text)
    return value if value is not None else rpn(text)


def to_int(text: str) -> int:
    """An integer (`3`, or a number with no fractional part such as `3.0`)."""
    value = to_float(text)
    if value != int(value):
        raise _ValueProblem(f"expected a whole number, found {text!r}")
    return int(value)


_TRUE = {"y", "yes", "true", "t"}
_FALSE = {"n", "no", "false", "f"}


def to_bool(text: str) -> bool:
    """`y/yes/true/t` or `n/no/false/f`, any case.

    OpenDSS reads anything not starting with `y` or `t` as false (so `1` is false);
    gridflex rejects such values instead of guessing.
    """
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _ValueProblem(
        f"expected yes or no (y/yes/true/t, n/no/false/f), found {text!r}"
    )


def to_strings(text: str) -> list[str]:
    """The items of an array of words, e.g. `[650 RG60]` or `[wye, delta]`."""
    return _items(_unwrap(text))


def to_array(text: str) -> list[float]:
    """An array of numbers: `[1 2 3]`, `[1, 2, 3]`, `"1 2 3"`, items may be RPN math."""
    text = _unwrap(text)
    if re.match(r"^\s*(file|dblfile|sngfile)\s*=", text, re.IGNORECASE):
        raise _ValueProblem(
            f"values read from a file ({text!r}) are not supported here"
        )
    return [to_float(item) for item in _items(text)]


def to_matrix(text: str, order: int | None = None) -> np.ndarray:
    """A symmetric matrix, as OpenDSS reads `rmatrix`, `xmatrix` and `cmatrix`.

    Rows are separated by `|`; each row gives either the lower triangle (row `i` has
    `i` numbers) or the full row (OpenDSS then reads only the lower triangle). Without
    `|`, `n*n` numbers are a full matrix and `n(n+1)/2` a lower triangle, row by row.

    **Arguments:**

    - `text`: the matrix text, brackets removed.
    - `order`: the expected size (the element's number of phases), if known.
    """
    rows = [_items(row) for row in _unwrap(text).split("|")]
    if len(rows) == 1:
        flat = rows[0]
        k = len(flat)
        full = math.isqrt(k)
        tri = (math.isqrt(8 * k + 1) - 1) // 2
        n = order if order is not None else (full if full * full == k else tri)
        if n * n == k and k > 0:
            rows = [flat[i * n : (i + 1) * n] for i in range(n)]
        elif n * (n + 1) // 2 == k and k > 0:
            rows = [flat[i * (i + 1) // 2 : (i + 1) * (i + 2) // 2] for i in range(n)]
        else:
            raise _ValueProblem(
                f"{k} numbers do not make a {n}x{n} matrix (give {n * n}, or "
                f"{n * (n + 1) // 2} for the lower triangle, rows separated by '|')"
            )
    n = len(rows)
    if order is not None and n != order:
        raise _ValueProblem(f"the matrix has {n} rows; this element needs {order}")
    matrix = np.zeros((n, n))
    for i, row in enumerate(rows):
        if len(row) not in (i + 1, n):
            raise _ValueProblem(
                f"row {i + 1} of the matrix has {len(row)} numbers; expected {i + 1} "
                f"(lower triangle) or {n} (full row)"
            )
        for j in range(i + 1):
            matrix[i, j] = matrix[j, i] = to_float(row[j])
    return matrix


def to_bus(text: str) -> tuple[str, tuple[int, ...]]:
    """A bus spec: `650.1.2.3` is `("650", (1, 2, 3))`; `sourcebus` is
    `("sourcebus", ())` (default nodes). Bus names are lower case, as in OpenDSS."""
    name, *nodes = text.strip().split(".")
    if not name:
        raise _ValueProblem(f"bus spec {text!r} has no bus name")
    try:
        numbers = tuple(int(k) for k in nodes)
    except ValueError:
        raise _ValueProblem(
            f"bus spec {text!r}: nodes after the bus name must be whole numbers, "
            "e.g. '632.1.2.3'"
        ) from None
    if any(k < 0 for k in numbers):
        raise _ValueProblem(f"bus spec {text!r} has a negative node")
    return name.lower(), numbers
