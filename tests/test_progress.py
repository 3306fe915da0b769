"""Progress on stderr: plain lines when the stream is not a terminal, a bar of the tasks when it is."""

from __future__ import annotations

import io

from suite.runner import Progress

# The messages a run of 2 generators x 2 repeats says, in order, in the formats suite/runner.py writes.
MESSAGES = [
    "[demo] loading adult.csv",
    "[demo] marginals (1/2) repeat 1/2: fit on 1000 rows",
    "[demo] marginals (1/2) repeat 1/2: sample 1000 rows",
    "[demo] marginals (1/2) repeat 1/2: distance",
    "[demo] marginals (1/2) repeat 2/2: fit on 1000 rows",
    "[demo] gaussian_copula (2/2) repeat 1/2: fit on 1000 rows",
    "[demo] gaussian_copula (2/2) repeat 1/2: generator gaussian_copula failed during fit: boom",
    "[demo] gaussian_copula (2/2) repeat 2/2: fit on 1000 rows",
    "[demo] marginals: release",
    "[demo] gaussian_copula: block (1 reason(s))",
]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress(stream) as say:
        for message in MESSAGES:
            say(message)
    assert stream.getvalue() == "".join(m + "\n" for m in MESSAGES)  # exactly one line per message, as before


def test_a_bar_on_a_terminal_counts_tasks_and_keeps_the_lines_that_matter() -> None:
    stream = _Terminal()
    with Progress(stream) as say:
        for message in MESSAGES[:3]:
            say(message)
        Progress()(MESSAGES[3])  # a task's own Progress, made in the same process, feeds the bar
        for message in MESSAGES[4:]:
            say(message)
    out = stream.getvalue()
    lines = out.replace("\r", "\n").splitlines()
    for kept in (MESSAGES[0], MESSAGES[6], MESSAGES[8], MESSAGES[9]):  # scenario lines and the failure
        assert kept in lines
    assert MESSAGES[1] not in lines and MESSAGES[3] not in lines  # steps only update the bar
    assert "4/4" in out and "5/4" not in out  # (generator x repeat) tasks done of the total, each counted once
    assert Progress._active is None  # the bar ended: a later Progress prints plain lines again


def test_done_lines_of_worker_processes_count_tasks() -> None:
    stream = _Terminal()
    with Progress(stream) as say:
        say("[demo] done: marginals repeat 1/1")
        say("[demo] done: ctgan repeat 1/1")
    assert "2task" in stream.getvalue().replace(" ", "")  # no total known: the count of tasks done


def test_quiet_prints_nothing_even_on_a_terminal() -> None:
    stream = _Terminal()
    with Progress(stream, enabled=False) as say:
        for message in MESSAGES:
            say(message)
    assert stream.getvalue() == ""


def test_a_run_on_a_terminal_draws_the_bar_of_its_tasks(tmp_path, monkeypatch, capsys) -> None:
    """End to end: 2 generators x 2 repeats on 200 rows of flchain, stderr a terminal."""
    import pandas as pd

    from suite.cli import main
    from tests.test_bad_input import FLCHAIN, Case

    frame = pd.read_parquet(FLCHAIN).sample(200, random_state=0).reset_index(drop=True)
    case = Case(tmp_path, frame).write(
        repeats=2, policy={"collisions.excess": {"max": 0.01}, "dcr.share_closer_to_train": {}}
    )
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["run", str(case.scenario)]) == 0, terminal.getvalue()
    out = terminal.getvalue()
    lines = out.replace("\r", "\n").splitlines()
    assert "4/4" in out and "5/4" not in out and Progress._active is None
    assert "[bad-input] identity: block (2 reason(s))" in lines and "[bad-input] holdout: release" in lines
    assert not any(line.startswith("[bad-input] holdout (2/2)") for line in lines)  # steps drawn on the bar
