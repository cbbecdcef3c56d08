"""The OpenDSS command language: comments, continuation lines, parameters, quoting,
in-line RPN math, arrays, matrices, bus specs, redirects, and readable errors."""

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from gridflex.feeders._dss_syntax import (
    Command,
    DssError,
    Param,
    parse_file,
    parse_text,
    rpn,
    to_array,
    to_bool,
    to_bus,
    to_float,
    to_int,
    to_matrix,
    to_strings,
)


def _one(text: str) -> Command:
    (command,) = parse_text(text, "test.dss")
    return command


def _params(text: str) -> dict[str | None, str]:
    return {p.key: p.value for p in _one(text).params}


# --- commands -------------------------------------------------------------------------


def test_comments_are_dropped():
    text = """
    ! a whole-line comment
    // another
    New Line.a bus1=x bus2=y  ! trailing comment
    New Line.b bus1=x bus2=y  // trailing comment
    /* a block
       New Line.hidden bus1=x
    */
    New Line.c bus1=x bus2=y
    """
    commands = parse_text(text, "t.dss")
    assert [c.target for c in commands] == ["Line.a", "Line.b", "Line.c"]
    assert commands[0].params == (Param("bus1", "x"), Param("bus2", "y"))
    assert [c.line for c in commands] == [4, 5, 9]


def test_comment_characters_inside_quotes_are_kept():
    (command,) = parse_text('Redirect "a!b.dss"', "t.dss")
    assert command.params == (Param(None, "a!b.dss", True),)


def test_continuation_lines_continue_the_element():
    commands = parse_text(
        "New circuit.x\n~ basekv=4.16\nmore pu=1.02\nNew Line.a\n~ length=2\n", "t.dss"
    )
    assert [c.verb for c in commands] == ["new", "more", "more", "new", "more"]
    assert commands[1].element == "Vsource.source"  # `New circuit` edits the source
    assert commands[2].params == (Param("pu", "1.02"),)
    assert commands[4].element == "Line.a"


def test_case_and_abbreviations():
    command = _one("NEW LINE.L1 BUS1=X")
    assert command.verb == "new" and command.params == (Param("bus1", "X"),)
    assert _one("calcv").verb == "calcvoltagebases"
    assert _one("Set VoltageBases = [4.16, 0.48]").params == (
        Param("voltagebases", "4.16, 0.48", True),
    )


def test_positional_and_keyword_parameters():
    command = _one("New Line.L1 650 632 linecode=mtx601 0.5")
    assert command.target == "Line.L1"
    assert command.params == (
        Param(None, "650"),
        Param(None, "632"),
        Param("linecode", "mtx601"),
        Param(None, "0.5"),
    )


def test_object_equals_syntax():
    command = _one("New object=circuit.ieee123 basekv=4.16")
    assert command.target == "circuit.ieee123"
    assert command.element == "Vsource.source"


def test_property_edit_syntax():
    command = _one("Transformer.reg1a.wdg=2 Tap=(0.00625 7 * 1 +)")
    assert command.verb == "edit" and command.target == "Transformer.reg1a"
    assert command.params == (Param("wdg", "2"), Param("tap", "0.00625 7 * 1 +", True))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('kv="4.16 1.732 /"', "4.16 1.732 /"),
        ("kv='4.16'", "4.16"),
        ("kv=[4.16]", "4.16"),
        ("kv=(4.16)", "4.16"),
        ("kv={4.16}", "4.16"),
        ("kvs=[(4.16 2 /) 2.4]", "(4.16 2 /) 2.4"),
    ],
)
def test_quotes_and_brackets(text, value):
    assert _params(f"New Transformer.t {text}")[text.split("=")[0]] == value


def test_names_with_dots_keep_them():
    command = _one("New LineCode.2c_.007 nphases=3")
    assert command.target == "LineCode.2c_.007"


def test_batchedit_target():
    command = _one("batchedit load..* enabled=no")
    assert command.verb == "batchedit" and command.target == "load..*"


# --- values ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4.16", 4.16),
        (".48", 0.48),
        ("-1e-4", -1e-4),
        ("8 1000 /", 0.008),
        (".5 1000 /", 0.0005),
        ("0.00625 7 * 1 +", 1.04375),
        ("0.00625 -1 * 1 +", 0.99375),
        ("2 sqrt", math.sqrt(2.0)),
        ("4 sqr", 16.0),
        ("3 4 swap -", 1.0),
        ("2 3 ^", 8.0),
        ("pi", math.pi),
        ("30 sin", 0.5),
        ("1 1 atan2", 45.0),
        ("4 inv", 0.25),
    ],
)
def test_numbers_and_rpn(text, value):
    assert to_float(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize(
    "text", ["", "abc", "1 +", "1 0 /", "4.16kV", "-1 sqrt", "nan"]
)
def test_bad_numbers(text):
    with pytest.raises(ValueError):
        to_float(text)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_round_trip(x):
    assert to_float(repr(x)) == x


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=8))
def test_array_round_trip(xs):
    assert to_array(" ".join(map(repr, xs))) == xs
    assert to_array(", ".join(map(repr, xs))) == xs


@given(st.integers(1, 5), st.data())
def test_matrix_round_trip(n, data):
    values = data.draw(
        st.lists(st.floats(-10, 10, allow_nan=False), min_size=n * n, max_size=n * n)
    )
    m = np.array(values).reshape(n, n)
    m = np.tril(m) + np.tril(m, -1).T
    lower = " | ".join(
        " ".join(repr(float(m[i, j])) for j in range(i + 1)) for i in range(n)
    )
    full = " | ".join(
        " ".join(repr(float(m[i, j])) for j in range(n)) for i in range(n)
    )
    flat = " ".join(repr(float(v)) for v in m.ravel())
    for text in (lower, full, flat):
        np.testing.assert_array_equal(to_matrix(text, n), m)
    np.testing.assert_array_equal(to_matrix(lower), m)


def test_matrix_forms():
    expected = np.array([[1.0, 2.0], [2.0, 3.0]])
    np.testing.assert_array_equal(to_matrix("1 | 2 3"), expected)
    np.testing.assert_array_equal(to_matrix("1 2 | 2 3"), expected)
    np.testing.assert_array_equal(to_matrix("1, 2, 3", 2), expected)  # lower, no '|'
    np.testing.assert_array_equal(to_matrix("(0.5 2 *) | 2 3"), expected)
    with pytest.raises(ValueError, match="row 2"):
        to_matrix("1 | 2 3 4 5")
    with pytest.raises(ValueError, match="needs 3"):
        to_matrix("1 | 2 3", 3)


def test_bool_int_strings_bus():
    assert to_bool("Yes") and to_bool("t") and to_bool("TRUE") and to_bool("y")
    assert not (to_bool("no") or to_bool("F") or to_bool("false") or to_bool("n"))
    with pytest.raises(ValueError, match="yes or no"):
        to_bool("1")  # OpenDSS would silently read this as 'no'
    assert to_int("3") == 3 and to_int("3.0") == 3
    with pytest.raises(ValueError):
        to_int("2.5")
    assert to_strings("[650.1, RG60.1]") == ["650.1", "RG60.1"]
    assert to_bus("RG60.1.2.3") == ("rg60", (1, 2, 3))
    assert to_bus("sourcebus") == ("sourcebus", ())
    assert to_bus("650.1.2.3.0") == ("650", (1, 2, 3, 0))
    for bad in ("", ".1", "650.a", "650.-1"):
        with pytest.raises(ValueError):
            to_bus(bad)


def test_rpn_reports_the_expression():
    with pytest.raises(ValueError, match="runs out of operands"):
        rpn("1 *")


# --- files ----------------------------------------------------------------------------


def test_redirect_and_compile_are_relative_and_nested(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "master.dss").write_text(
        "New circuit.x\nRedirect sub/a.dss\nset loadmult=1\n"
    )
    (tmp_path / "sub" / "a.dss").write_text("Compile (deeper/B.DSS)\nRedirect c.dss\n")
    (tmp_path / "sub" / "deeper" / "B.DSS").write_text("New Line.b\n")
    # After `Compile`, relative paths refer to the compiled file's folder.
    (tmp_path / "sub" / "deeper" / "c.dss").write_text("New Line.c\n")
    commands = parse_file(tmp_path / "master.dss")
    assert [(c.verb, c.target) for c in commands] == [
        ("new", "circuit.x"),
        ("new", "Line.b"),
        ("new", "Line.c"),
        ("set", None),
    ]
    assert commands[1].file.endswith("B.DSS") and commands[1].line == 1


def test_redirect_finds_files_whose_case_differs(tmp_path):
    (tmp_path / "m.dss").write_text("redirect LineCodes.dss\n")
    (tmp_path / "LINECODES.DSS").write_text("New LineCode.a\n")
    assert parse_file(tmp_path / "m.dss")[0].target == "LineCode.a"


def test_missing_redirect_names_file_and_line(tmp_path):
    (tmp_path / "m.dss").write_text("New circuit.x\n\nRedirect nothere.dss\n")
    with pytest.raises(DssError) as info:
        parse_file(tmp_path / "m.dss")
    message = str(info.value)
    assert "m.dss, line 3" in message and "nothere.dss" in message
    assert "file not found" in message


def test_redirect_loop(tmp_path):
    (tmp_path / "m.dss").write_text("Redirect m.dss\n")
    with pytest.raises(DssError, match="redirects to itself"):
        parse_file(tmp_path / "m.dss")


def test_syntax_errors_are_collected(tmp_path):
    (tmp_path / "m.dss").write_text(
        "New circuit.x\n"
        "New Line.a bus1=x rmatrix=[1 2\n"  # unbalanced bracket
        "Frobnicate everything\n"  # unknown command
        "New\n"  # no object
        "~ =5\n"  # value without a name
    )
    with pytest.raises(DssError) as info:
        parse_file(tmp_path / "m.dss")
    problems = info.value.problems
    assert [p.line for p in problems] == [2, 3, 4, 5]
    assert problems[0].element == "Line.a"  # the element on the failing line
    assert "unbalanced '['" in problems[0].message
    assert "unknown command 'Frobnicate'" in problems[1].message
    assert str(info.value).startswith("OpenDSS input has 4 problems:")
    assert all(p.file is not None and p.file.endswith("m.dss") for p in problems)


def test_problem_message_names_everything():
    error = DssError(
        [
            Command("new", "Line.a", (), "f.dss", 7, "Line.a").problem(
                "unknown length unit 'feet'", "units"
            )
        ]
    )
    assert str(error) == (
        "OpenDSS input has a problem:\n"
        "  - f.dss, line 7, Line.a, property 'units': unknown length unit 'feet'"
    )
    assert isinstance(error, ValueError)


def test_helpers_accept_values_with_their_brackets():
    assert to_array("[1 2 3]") == [1.0, 2.0, 3.0]
    assert to_array("(1, 2, 3)") == [1.0, 2.0, 3.0]
    assert to_float("(8 1000 /)") == 0.008
    np.testing.assert_array_equal(to_matrix("[1 | 2 3]"), [[1.0, 2.0], [2.0, 3.0]])
