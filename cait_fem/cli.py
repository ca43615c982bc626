"""Command line: ``cait-fem run case.toml -o outdir [--overwrite] [--quiet] [--no-plots]``,
``cait-fem fit fit.toml -o outdir [--overwrite] [--quiet]``, ``cait-fem check case.toml``,
``cait-fem mesh case.toml -o mesh.msh [--overwrite]`` and ``cait-fem --version``.

Exit codes: 0 success; 2 bad input (case file, an output place that cannot take the
results or already holds results), reported before any meshing, solving or fitting; 1 the
solver failed; 130 / 143 interrupted by SIGINT / SIGTERM (the previous results are kept).
Under ``mpirun`` every rank runs the same command; only rank 0 prints and writes.

A command's results are written as a unit (:mod:`cait_fem.output.result_set`): staged in
a hidden directory inside the output directory and moved into place at the end.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import interrupts
from .errors import ConfigError, SolverError
from .interrupts import Interrupted

EXIT_OK, EXIT_SOLVER, EXIT_USAGE = 0, 1, 2
def _version() -> str:
    try:
        import importlib.metadata
        return importlib.metadata.version("cait_fem")
    except Exception:  # noqa: BLE001
        return getattr(importlib.import_module("cait_fem"), "__version__", "unknown")


def _error(message: str, rank: int | None = None) -> None:
    if (interrupts.launcher_rank() if rank is None else rank) == 0:
        print(f"cait-fem: error: {message}", file=sys.stderr)


def _say(*lines: str) -> None:
    """Print the report on stdout. A reader that closed the pipe early (``| head -1``)
    does not stop the command: by the time the report is printed the results are written,
    and the report is not worth an error; the rest of the output goes to /dev/null."""
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()


def _silence_stdout() -> None:
    # Python flushes stdout again at exit; pointing the descriptor at /dev/null keeps that
    # flush from failing with a second BrokenPipeError ("Exception ignored ...").
    with open(os.devnull, "w") as null:
        try:
            os.dup2(null.fileno(), sys.stdout.fileno())
        except (OSError, ValueError):
            pass


def _failed(exc: Exception, what: str, output, rank: int) -> int:
    """Report a ConfigError (exit 2) or SolverError (exit 1) of a command whose result set
    was not committed; a signal that surfaced as the solver's error is reported as such."""
    interrupts.reraise_signal()
    if isinstance(exc, ConfigError):
        _error(str(exc), rank)
        return EXIT_USAGE
    _error(f"{what} failed: {exc}; nothing in {os.path.abspath(output)} was changed", rank)
    return EXIT_SOLVER


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cait-fem", description="Finite-element Nernst-Planck-Poisson "
                                     "simulator for charge attachment induced transport (CAIT).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser("run", help="run a case file and write profiles, time series, summary and plots")
    run.add_argument("case", help="TOML case file")
    run.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    run.add_argument("--overwrite", action="store_true", help="replace results already in the output directory")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-plots", action="store_true", help="write data files only, no PNGs")
    run.add_argument("--checkpoint", action="store_true",
                     help="write a checkpoint (DIR/checkpoint) at every output time, to resume from")
    run.add_argument("--resume", metavar="CHECKPOINT", help="continue an interrupted run of this case "
                     "from its checkpoint directory (run.t_end_s may have been raised)")
    run.add_argument("--initial", metavar="CHECKPOINT", help="start from the final state of another run "
                     "on the same mesh (a sequential experiment, e.g. double CAIT)")
    fit = sub.add_parser("fit", help="fit model parameters to measured depth profiles (one or more experiments)")
    fit.add_argument("fit_file", help="TOML fit file (experiments, data, parameters)")
    fit.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    fit.add_argument("--overwrite", action="store_true", help="replace results already in the output directory")
    fit.add_argument("--quiet", action="store_true", help="no progress lines")
    check = sub.add_parser("check", help="validate a case file and print every parameter (no solve)")
    check.add_argument("case", help="TOML case file")
    mesh = sub.add_parser("mesh", help="write the gmsh mesh (.msh, nm) of a 2D/3D case's geometry")
    mesh.add_argument("case", help="TOML case file with a [geometry] table")
    mesh.add_argument("-o", "--output", required=True, metavar="FILE", help="mesh file to write (.msh)")
    mesh.add_argument("--overwrite", action="store_true", help="replace an existing mesh file")
    return parser


def _simulate_function():
    """``cait_fem.simulate``, imported only when a run or fit really starts: it loads MPI,
    PETSc and DOLFINx. ImportError (saying what to install) if DOLFINx 0.11 is missing.

    SIGINT/SIGTERM are held back during the import: raised inside the initialisation of a
    compiled (nanobind) module, the exception cannot unwind through its C++ code and the
    process aborts; held back, the signal arrives right after the import."""
    from cait_fem.output.result_set import deferred_signals

    with deferred_signals():
        import mpi4py.MPI  # noqa: F401  (MPI first)

        from cait_fem import simulate  # the package's lazy __getattr__ checks the DOLFINx version
    return simulate


def _describe(exp) -> str:
    front = exp.front.type
    if getattr(exp.front, "has_history", False):
        front += f" (measured current history, {len(exp.front.current_times_s)} samples)"
    species = ", ".join(f"{s.name} ({s.role}, z = {s.charge_number}, {s.diffusion.to_dict().get('model', '?')})"
                        for s in exp.species)
    times = ", ".join(f"{t:g}" for t in exp.run.all_output_times_s)
    return (f"case {exp.name!r}: glass {exp.glass.name} ({exp.glass.thickness_m:g} m, "
            f"{exp.glass.temperature_K:g} K); species {species}; front: {front}; "
            f"t_end = {exp.run.t_end_s:g} s, profiles at {times} s")


def _load_checked(load, path, args, output_names=None):
    """``load(path)``, with the output directory checked for earlier results; None after
    printing the error (bad input or results already there): nothing has been solved."""
    from cait_fem.output.result_set import check_output_place
    try:
        loaded = load(path)
        names = () if output_names is None else output_names(loaded)
        check_output_place(args.output, names, overwrite=args.overwrite)
    except (ConfigError, FileExistsError) as exc:
        _error(str(exc))
        return None
    return loaded


def _estimates(exp) -> str:
    """The a-priori size of the run (cait_fem.case.estimates), as ``check`` prints it."""
    from cait_fem.case.estimates import check_size
    est = check_size(exp)
    mesh = est["mesh"]
    if mesh["cells"] is None:
        size = f"mesh from geometry.mesh_file ({mesh['depth_cells']} cells on the depth axis)"
    else:
        size = f"~{mesh['cells']:.3g} cells, ~{mesh['nodes']:.3g} nodes ({mesh['dimension']}D)"
    return (f"estimated mesh: {size}, limit mesh.max_cells = {exp.mesh.max_cells}; at least {est['min_steps']} "
            f"time steps, limit run.max_steps = {exp.run.max_steps}")


def cmd_check(args) -> int:
    from cait_fem.case.case_file import dumps_toml, experiment_to_dict, load_case
    try:
        exp = load_case(args.case)
        try:
            exp.geometry.check_mesh_file()
        except ConfigError as exc:
            raise ConfigError(f"{args.case}: {exc}") from None
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    res = exp.depth_resolution
    rule = (f"# depth mesh: {res.front_spacing_m * 1e9:.3g} nm at the surface, growing by {res.spacing_slope:.3g} "
            f"nm per nm of depth to at most {res.max_front_spacing_m * 1e9:.3g} nm, fine to "
            f"{res.fine_depth_m * 1e9:.3g} nm ({res.basis})")
    _say(f"# {args.case}: OK -- {_describe(exp)}", f"# {_estimates(exp)}", rule,
         "# every parameter, defaults filled in (a valid case file):",
         dumps_toml(experiment_to_dict(exp)).rstrip("\n"))
    return EXIT_OK


def _run_outputs(args):
    """The files a run of the loaded case writes (checked before the solve)."""
    from cait_fem.output.result import OUTPUT_FILES

    def names(exp):
        out = list(OUTPUT_FILES)
        if exp.geometry.kind != "slab":
            from cait_fem.post.spot_exports import OUTPUT_FILES as SPOT_FILES
            out += SPOT_FILES
        own_checkpoint = os.path.abspath(os.path.join(args.output, "checkpoint"))
        if args.checkpoint and not (args.resume and os.path.abspath(args.resume) == own_checkpoint):
            out.append("checkpoint")
        return out
    return names


def _run_options(args) -> dict | None:
    """Checkpoint options as keyword arguments of simulate(); None after printing an error."""
    from cait_fem.run.checkpoint import read_checkpoint
    if args.resume and args.initial:
        _error("--resume and --initial exclude each other: resume continues a run, initial starts a new one")
        return None
    options = {}
    try:
        if args.resume:
            options["resume"] = read_checkpoint(args.resume)
        if args.initial:
            options["initial"] = read_checkpoint(args.initial)
    except ConfigError as exc:
        _error(str(exc))
        return None
    if args.checkpoint:
        options["checkpoint_dir"] = os.path.join(args.output, "checkpoint")
    return options


def _run_set_names() -> list[str]:
    """Every name a run's result set may hold (a previous set's entries the new one lacks
    are removed when the new one is committed)."""
    from cait_fem.output.result import EXPORT_FILES, OUTPUT_FILES
    return list(OUTPUT_FILES) + list(EXPORT_FILES)


def cmd_run(args) -> int:
    from cait_fem.case.case_file import load_case
    from cait_fem.output.result_set import ResultSet
    from cait_fem.run.progress import make_reporter
    exp = _load_checked(load_case, args.case, args, _run_outputs(args))
    if exp is None:
        return EXIT_USAGE
    options = _run_options(args)
    if options is None:
        return EXIT_USAGE
    if "resume" in options:  # a change of structure is refused before any mesh is built
        from cait_fem.run.checkpoint import resume_changes
        try:
            changed = resume_changes(options["resume"], exp)
        except ConfigError as exc:
            _error(str(exc))
            return EXIT_USAGE
        if interrupts.launcher_rank() == 0:
            _say(f"cait-fem: resuming from {args.resume} at t = {options['resume'].t_s:g} s",
                 *(f"  {key}: {old!r} -> {new!r}" for key, (old, new) in changed.items()))

    interrupts.state.update(phase="start", output=os.path.abspath(args.output))
    try:
        simulate = _simulate_function()
    except ImportError as exc:
        _error(f"cannot load the solver: {exc}")
        return EXIT_SOLVER
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    if comm.Get_size() > 1:
        interrupts.state["ranks_agree"] = lambda signum: comm.allreduce(signum, op=MPI.MAX)
        interrupts.agreed_interruption()  # one that came during the start
    interrupts.state.update(phase="run", output=os.path.abspath(args.output))
    reporter = make_reporter(exp.run.t_end_s, quiet=args.quiet, comm=comm, desc=exp.name)
    try:
        with ResultSet(args.output, owned=_run_set_names(), comm=comm) as staged:
            if exp.geometry.kind != "slab":
                options.update(exports_dir=staged.staging, overwrite=True)
            interrupts.state["set"] = staged
            try:
                result = simulate(exp, progress=interrupts.ProgressTracker(reporter), comm=comm, **options)
            finally:
                reporter.close()
            interrupts.agreed_interruption()
            if "exported_files" in result.metadata:  # as they will be named after the commit
                result.metadata["exported_files"] = [str(staged.final_path(p))
                                                     for p in result.metadata["exported_files"]]
            interrupts.state["phase"] = "writing of the results"
            result.save(staged.staging, overwrite=True, comm=comm)
            if not args.no_plots:
                result.plot(staged.staging, overwrite=True, comm=comm)
            paths = staged.commit()
    except (ConfigError, SolverError) as exc:
        return _failed(exc, "the solver", args.output, rank)
    if rank == 0:
        s = result.summary()
        _say(f"cait-fem: {exp.name}: {s['steps']} steps, {s['newton_iterations']} Newton iterations, "
             f"wall time {s.get('wall_time_s') or 0:.3g} s; plateau {s['plateau_native']:.4g}, "
             f"front {s['front_position_nm']:.4g} nm, conservation error {s['conservation_error']:.2g}"
             + (f"; beam delivered {s['delivered_charge_C_m2']:.4g} C/m^2, landed {s['landed_fraction']:.4g} of it"
                if "delivered_charge_C_m2" in s else ""),
             f"cait-fem: wrote {len(paths)} files to {os.path.abspath(args.output)}:",
             *(f"  {p}" for p in paths))
    return EXIT_OK


def cmd_fit(args) -> int:
    from cait_fem.fit.config import load_fit_case
    from cait_fem.fit.result import output_names, previous_fit_names
    from cait_fem.output.result_set import ResultSet
    case = _load_checked(load_fit_case, args.fit_file, args,
                         lambda c: output_names([e.name for e in c.experiments]))
    if case is None:
        return EXIT_USAGE

    try:
        _simulate_function()  # the solver stack, loaded with signals held back
    except ImportError as exc:
        _error(f"cannot load the solver: {exc}")
        return EXIT_SOLVER
    from mpi4py import MPI

    from .fit import run_fit
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    interrupts.state.update(phase="fit", output=os.path.abspath(args.output))
    try:
        with ResultSet(args.output, owned=previous_fit_names, comm=comm) as staged:
            interrupts.state["set"] = staged
            result = run_fit(case, comm=comm, quiet=args.quiet)
            interrupts.state["phase"] = "writing of the results"
            result.save(staged.staging, overwrite=True, comm=comm)
            paths = staged.commit()
    except (ConfigError, SolverError) as exc:
        return _failed(exc, "the fit", args.output, rank)
    if rank == 0:
        lines = [f"cait-fem: fit {case.name!r}: cost {result.cost:.6g}, reduced chi2 {result.reduced_chi2:.4g}, "
                 f"{result.evaluations} evaluations, {result.forward_solves} forward solves, "
                 f"{result.wall_time_s:.1f} s on {comm.size} process(es) ({result.message})"]
        for est in result.estimates:
            lo, hi = est.ci95
            shift = f"  numerical shift {est.numerical_shift:+.2g}" if est.numerical_shift is not None else ""
            lines.append(f"  {est.parameter.label:40s} = {est.value:.5g}  +- {est.stderr:.2g}  "
                         f"(95 %: {lo:.4g} .. {hi:.4g}){shift}" + ("  [at bound]" if est.at_bound else ""))
        lines.append(f"cait-fem: wrote {len(paths)} files to {os.path.abspath(args.output)}")
        _say(*lines)
    from cait_fem.fit.problem import uninformative
    reasons = uninformative(result.estimates, result.cost, result.dof)
    if reasons:  # saved for inspection, but never a success (docs/fitting.md, "Meaningless fits")
        _error("the fit is meaningless: " + "; ".join(reasons), rank)
        return EXIT_SOLVER
    return EXIT_OK


def cmd_mesh(args) -> int:
    from cait_fem.case.case_file import load_case
    try:
        exp = load_case(args.case)
        geometry = getattr(exp, "geometry", None)
        if geometry is None or geometry.kind == "slab":
            raise ConfigError(f"{args.case}: geometry.kind is \"slab\": a 1D slab needs no mesh file (set "
                              '[geometry] kind = "section", "axisymmetric", "disc" or "box")')
        if geometry.mesh_file is not None:
            raise ConfigError(f"{args.case}: geometry.mesh_file = {geometry.mesh_file!r} is set: the case reads "
                              "its mesh from that file, there is nothing to generate (remove mesh_file)")
        from cait_fem.output.result_set import check_output_file
        check_output_file(args.output, overwrite=args.overwrite, what="mesh output")
        if interrupts.launcher_rank() != 0:  # under mpirun one rank writes the file
            return EXIT_OK
        from cait_fem.mesh.gmsh_sample import write_msh
        interrupts.state.update(phase="meshing", output=os.path.abspath(args.output))
        path = write_msh(geometry, exp.glass.thickness_m, exp.mesh, args.output, overwrite=args.overwrite,
                         resolution=exp.depth_resolution)
        interrupts.state["committed"] = True
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    _say(f"cait-fem: wrote the {geometry.kind} mesh of {exp.name!r} to {os.path.abspath(path)}")
    return EXIT_OK


def main(argv=None) -> int:
    """Run one command (``argv`` as on the command line, None = ``sys.argv[1:]``); returns
    the exit code. For use inside a Python process, e.g. tests; the program is :func:`console`."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    interrupts.state.clear()  # (main() may run several times in one process, e.g. in tests)
    if getattr(args, "output", None):
        interrupts.state["output"] = os.path.abspath(args.output)
    return {"run": cmd_run, "fit": cmd_fit, "check": cmd_check, "mesh": cmd_mesh}[args.command](args)


def console() -> None:
    """The ``cait-fem`` program: :func:`main` on the command line, then exit with its code.

    The objects alive before and after the command are frozen for the cyclic garbage
    collector (``gc.freeze``; they are still freed normally). Otherwise its full passes
    walk every object of the loaded libraries (NumPy, SciPy, UFL, DOLFINx, matplotlib)
    again and again: during the run and in the interpreter's final collections, about
    0.2 s of a 2.5 s 1D run. The youngest generation is collected after 10000 instead of
    700 new objects: a quarter as many collections in the K+ demo (98, not 346; 0.05 s),
    the same garbage found later, about 1 MB more held meanwhile. Not for :func:`main` in a
    long-lived process, which could then never collect cycles among the frozen objects."""
    import gc

    interrupts.prepare_process()
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    try:
        code = main()
        interrupts.ignore_signals()  # done: a signal while Python shuts down changes nothing
    except (Interrupted, KeyboardInterrupt) as exc:
        code = interrupts.on_interrupt(exc)
    except BaseException:
        # Interrupted inside a PETSc callback (an SNES residual or Jacobian) comes back as a
        # petsc4py.PETSc.Error that only chains it; the signal is what ended the command.
        if "signal" not in interrupts.state:
            raise
        code = interrupts.on_interrupt(Interrupted(interrupts.state["signal"]))
    gc.freeze()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code)


if __name__ == "__main__":
    console()
