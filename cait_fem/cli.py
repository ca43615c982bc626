"""Command line: ``cait-fem run case.toml -o outdir [--overwrite] [--quiet] [--no-plots]``,
``cait-fem fit fit.toml -o outdir [--overwrite] [--quiet]``, ``cait-fem check case.toml``,
``cait-fem mesh case.toml -o mesh.msh [--overwrite]`` and ``cait-fem --version``.

Exit codes: 0 success, 2 bad input (case file, output directory that already holds
results) reported before any solve, 1 the solver failed.
Under ``mpirun`` every rank runs the same command; only rank 0 prints and writes.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import ConfigError, SolverError

EXIT_OK, EXIT_SOLVER, EXIT_USAGE = 0, 1, 2
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK", "MPI_LOCALRANKID")


def _version() -> str:
    try:
        import importlib.metadata
        return importlib.metadata.version("cait_fem")
    except Exception:  # noqa: BLE001
        return getattr(importlib.import_module("cait_fem"), "__version__", "unknown")


def _launcher_rank() -> int:
    """This process's MPI rank as told by the launcher's environment (before MPI is loaded)."""
    for var in _RANK_VARIABLES:
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


def _error(message: str, rank: int | None = None) -> None:
    if (_launcher_rank() if rank is None else rank) == 0:
        print(f"cait-fem: error: {message}", file=sys.stderr)


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
    """``cait_fem.simulate``, imported only when a run really starts: it loads DOLFINx.
    ImportError (saying what to install) if DOLFINx 0.11 is missing."""
    from cait_fem import simulate  # the package's lazy __getattr__ checks the DOLFINx version
    return simulate


def _describe(exp) -> str:
    front = exp.front.type
    species = ", ".join(f"{s.name} ({s.role}, z = {s.charge_number}, {s.diffusion.to_dict().get('model', '?')})"
                        for s in exp.species)
    times = ", ".join(f"{t:g}" for t in exp.run.all_output_times_s)
    return (f"case {exp.name!r}: glass {exp.glass.name} ({exp.glass.thickness_m:g} m, "
            f"{exp.glass.temperature_K:g} K); species {species}; front: {front}; "
            f"t_end = {exp.run.t_end_s:g} s, profiles at {times} s")


def _load_checked(load, path, args, output_names=None):
    """``load(path)``, with the output directory checked for earlier results; None after
    printing the error (bad input or results already there): nothing has been solved."""
    from cait_fem.output.result import check_output_directory
    try:
        loaded = load(path)
        names = {} if output_names is None else {"names": output_names(loaded)}
        check_output_directory(args.output, overwrite=args.overwrite, **names)
    except (ConfigError, FileExistsError) as exc:
        _error(str(exc))
        return None
    return loaded


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
    print(f"# {args.case}: OK -- {_describe(exp)}")
    print("# every parameter, defaults filled in (a valid case file):")
    print(dumps_toml(experiment_to_dict(exp)), end="")
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


def cmd_run(args) -> int:
    from cait_fem.case.case_file import load_case
    from cait_fem.run.progress import make_reporter
    exp = _load_checked(load_case, args.case, args, _run_outputs(args))
    if exp is None:
        return EXIT_USAGE
    options = _run_options(args)
    if options is None:
        return EXIT_USAGE
    if exp.geometry.kind != "slab":
        options.update(exports_dir=args.output, overwrite=args.overwrite)

    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        simulate = _simulate_function()
    except ImportError as exc:
        _error(f"cannot load the solver: {exc}", rank)
        return EXIT_SOLVER
    reporter = make_reporter(exp.run.t_end_s, quiet=args.quiet, comm=comm, desc=exp.name)
    try:
        result = simulate(exp, progress=reporter, comm=comm, **options)
    except ConfigError as exc:
        _error(str(exc), rank)
        return EXIT_USAGE
    except SolverError as exc:
        _error(f"the solver failed: {exc}", rank)
        return EXIT_SOLVER
    finally:
        reporter.close()
    try:
        paths = list(result.metadata.get("exported_files", []))
        paths += result.save(args.output, overwrite=args.overwrite, comm=comm)
        if not args.no_plots:
            paths = list(paths) + list(result.plot(args.output, overwrite=args.overwrite, comm=comm))
    except (ConfigError, FileExistsError) as exc:
        _error(str(exc), rank)
        return EXIT_USAGE
    if rank == 0:
        s = result.summary()
        print(f"cait-fem: {exp.name}: {s['steps']} steps, {s['newton_iterations']} Newton iterations, "
              f"wall time {s.get('wall_time_s') or 0:.3g} s; plateau {s['plateau_native']:.4g}, "
              f"front {s['front_position_nm']:.4g} nm, conservation error {s['conservation_error']:.2g}")
        print(f"cait-fem: wrote {len(paths)} files to {os.path.abspath(args.output)}:")
        for p in paths:
            print(f"  {p}")
    return EXIT_OK


def cmd_fit(args) -> int:
    from cait_fem.fit.config import load_fit_case
    case = _load_checked(load_fit_case, args.fit_file, args,
                         lambda c: ["fit.json"] + [f"{e.name}_profile.csv" for e in c.experiments])
    if case is None:
        return EXIT_USAGE

    from mpi4py import MPI

    from .fit import run_fit
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        result = run_fit(case, comm=comm, quiet=args.quiet)
    except ConfigError as exc:
        _error(str(exc), rank)
        return EXIT_USAGE
    except SolverError as exc:
        _error(f"the fit failed: {exc}", rank)
        return EXIT_SOLVER
    try:
        paths = result.save(args.output, overwrite=args.overwrite, comm=comm)
    except (ConfigError, FileExistsError) as exc:
        _error(str(exc), rank)
        return EXIT_USAGE
    if rank == 0:
        print(f"cait-fem: fit {case.name!r}: cost {result.cost:.6g}, reduced chi2 {result.reduced_chi2:.4g}, "
              f"{result.evaluations} evaluations, {result.forward_solves} forward solves, "
              f"{result.wall_time_s:.1f} s on {comm.size} process(es) ({result.message})")
        for est in result.estimates:
            lo, hi = est.ci95
            print(f"  {est.parameter.label:40s} = {est.value:.5g}  +- {est.stderr:.2g}  (95 %: {lo:.4g} .. {hi:.4g})"
                  + ("  [at bound]" if est.at_bound else ""))
        print(f"cait-fem: wrote {len(paths)} files to {os.path.abspath(args.output)}")
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
        if _launcher_rank() != 0:  # under mpirun one rank writes the file
            return EXIT_OK
        from cait_fem.mesh.gmsh_sample import write_msh
        path = write_msh(geometry, exp.glass.thickness_m, exp.mesh, args.output, overwrite=args.overwrite)
    except ConfigError as exc:
        _error(str(exc))
        return EXIT_USAGE
    print(f"cait-fem: wrote the {geometry.kind} mesh of {exp.name!r} to {os.path.abspath(path)}")
    return EXIT_OK


def main(argv=None) -> int:
    """Run one command (``argv`` as on the command line, None = ``sys.argv[1:]``); returns
    the exit code. For use inside a Python process, e.g. tests; the program is :func:`console`."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
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

    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
