"""SIGINT and SIGTERM for the ``cait-fem`` program: they become an :class:`Interrupted`
exception, so that unwinding removes staged and temporary files (no PETSc handler, no
traceback), and the command ends with one line saying where it was and exit 128 + signal
(130 / 143). Under MPI the ranks agree on a signal once per time step, so that no rank
leaves inside a collective operation. Pure: signal, os and sys only."""

from __future__ import annotations

import os
import signal
import sys

# PETSc's own handlers would turn SIGINT/SIGTERM into an error stack and SIGPIPE (a reader
# such as `head` closing the pipe) into a crash banner with MPI_Abort; ours end cleanly.
PETSC_NO_SIGNAL_HANDLER = "-no_signal_handler"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, like KeyboardInterrupt: no ``except
    Exception`` swallows it); unwinding removes staged and temporary files."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


# Where the command is, for the one line printed on an interruption (this process only).
state: dict = {}
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "MPI_LOCALRANKID")


def launcher_rank() -> int:
    """This process's MPI rank as told by the launcher's environment (before MPI is loaded)."""
    for var in RANK_VARIABLES:
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def prepare_process() -> None:
    """Before anything loads PETSc: no PETSc signal handlers (PETSc reads PETSC_OPTIONS in
    PetscInitialize, which petsc4py runs on first import); SIGINT and SIGTERM raise
    :class:`Interrupted`. Python itself ignores SIGPIPE, so a closed pipe is a
    BrokenPipeError (see ``cait_fem.cli``)."""
    options = os.environ.get("PETSC_OPTIONS", "")
    if PETSC_NO_SIGNAL_HANDLER not in options.split():
        os.environ["PETSC_OPTIONS"] = f"{options} {PETSC_NO_SIGNAL_HANDLER}".strip()

    def interrupt(signum, _frame):
        if "signal" in state:
            # the first one is being handled: let the cleanup finish; but a third one ends
            # the process the hard way, in case something swallowed the first
            state["repeats"] = state.get("repeats", 0) + 1
            if state["repeats"] >= 2:
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
            return
        state["signal"] = signum
        if state.get("ranks_agree") is not None:
            return  # under MPI: raised on every rank at once, at the next step (ProgressTracker)
        # Objects the signal left half-built (say, a DOLFINx NonlinearProblem interrupted in
        # its __init__) fail in their finalizers; nothing to report on the way out.
        sys.unraisablehook = lambda _unraisable: None
        raise Interrupted(signum)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, interrupt)


def interrupted_message(signum: int) -> str:
    name = signal.Signals(signum).name
    where = ""
    if state.get("phase") == "run":
        t, steps = state.get("t_s"), state.get("steps")
        where = (f" during the run at t = {t:.6g} s (step {steps})" if t is not None
                 else " before the first time step")
    elif state.get("phase") == "start":
        where = " before the run started"
    elif state.get("phase"):
        where = f" during the {state['phase']}"
    elif "phase" not in state:
        where = " while reading the input"
    out = state.get("output")
    if out is None:
        kept = "nothing was written (any previous results are kept)"
    elif state.get("committed") or getattr(state.get("set"), "committed", False):
        kept = f"the new results were written to {out} before it"
    else:
        kept = f"nothing in {out} was changed (the previous results are kept)"
    return f"cait-fem: interrupted by {name}{where}; {kept}"


def reraise_signal() -> None:
    """A signal that arrived inside a solver callback may come back as the solver's own
    error (a SolverError saying Newton failed): report the interruption, not that."""
    if "signal" in state:
        raise Interrupted(state["signal"])


def agreed_interruption() -> None:
    """Under MPI the ranks of a run must leave together: a rank that raised inside a
    collective operation of the solver would leave the others waiting in it, or meeting
    another one (MPI aborts). So there a signal is only recorded, and at every accepted
    step (and once more before the results are written) the ranks agree whether any of
    them got one; then all raise it at the same point."""
    agree = state.get("ranks_agree")
    if agree is not None:
        signum = agree(state.get("signal", 0))
        if signum:
            state["signal"] = signum
            sys.unraisablehook = lambda _unraisable: None
            raise Interrupted(signum)


class ProgressTracker:
    """A progress reporter that remembers the last simulated time and step (for the line
    printed on an interruption) and passes everything on."""

    def __init__(self, reporter):
        self.reporter = reporter

    def update(self, t_s: float, dt_s: float, newton_iterations: int) -> None:
        state["t_s"] = t_s
        state["steps"] = state.get("steps", 0) + 1
        self.reporter.update(t_s, dt_s, newton_iterations)
        agreed_interruption()

    def close(self) -> None:
        self.reporter.close()


def ignore_signals() -> None:
    """SIGINT and SIGTERM ignored from now on: for the way out of a finished (or already
    interrupted) command. CPython puts handlers written in Python back to the default
    action while the interpreter shuts down, and a signal in that moment would kill the
    process (exit -15) after its results were written; an ignored signal stays ignored."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)


def on_interrupt(exc: BaseException) -> int:
    """The one line and the exit code 128 + signal number (130 SIGINT, 143 SIGTERM). The
    staged and temporary files are gone by now: the ``with`` blocks removed them while the
    exception unwound."""
    signum = exc.signum if isinstance(exc, Interrupted) else int(signal.SIGINT)
    ignore_signals()  # a second signal must not cut this short
    if launcher_rank() == 0:
        try:
            print(("\n" if sys.stderr.isatty() else "") + interrupted_message(signum), file=sys.stderr)
        except (BrokenPipeError, OSError):
            pass
    return 128 + signum
