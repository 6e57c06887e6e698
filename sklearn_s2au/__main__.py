"""Command line: ``python -m sklearn_s2au {demo,table1,table2,intensity} ...``.

Examples
--------
python -m sklearn_s2au demo
python -m sklearn_s2au table1 --corpus demo --epochs 5
python -m sklearn_s2au table2 --manifest my_corpus.csv --out results/
python -m sklearn_s2au intensity --encoders lstm tcn --aus AU12 AU17
python -m sklearn_s2au table2 --backend dask --scheduler tcp://10.0.0.1:8786
"""

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path

from . import experiments
from .classifiers import TABLE1_CONFIGS
from .labels import AUS, au_name

logger = logging.getLogger("sklearn_s2au")

DEMO_NOTE = (
    "These numbers come from the GENERATED demo corpus (sklearn_s2au.datasets."
    "make_speech_au_corpus), not from GEMEP: they show that the pipeline works and how it "
    "compares with the corpus oracle, and are not the paper's results (PAPER_TABLE1/2).")
INTENSITY_NOTE = (
    "These numbers come from the GENERATED demo corpus (sklearn_s2au.datasets."
    "make_speech_au_corpus), not from a real one: they show that the pipeline works.")


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m sklearn_s2au",
        description="Facial Action Units from speech: the protocols of Stappen et al. "
                    "(MMSP 2019) as commands.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        source = p.add_mutually_exclusive_group()
        source.add_argument("--corpus", choices=["demo"], default="demo",
                            help="the generated demo corpus (default)")
        source.add_argument("--manifest", type=Path,
                            help="CSV with file, speaker, au_file columns (your own corpus)")
        p.add_argument("--out", type=Path, default=Path("s2au_results"),
                       help="folder for tables and figures (default: s2au_results)")
        p.add_argument("--epochs", type=int, default=None,
                       help="maximum epochs (default: 100, as in the paper)")
        p.add_argument("--settings", choices=list(experiments.SETTINGS), default="default",
                       help="network training settings: the package's defaults, or the "
                            "paper's exact ones (lr 1e-4, L2 1e-1, the paper's decoder)")
        p.add_argument("--n-jobs", type=int, default=-1,
                       help="folds in parallel (default: all cores)")
        p.add_argument("--backend", choices=["loky", "dask"], default="loky",
                       help="joblib backend for the folds")
        p.add_argument("--scheduler", default=None,
                       help="Dask scheduler address (with --backend dask)")
        p.add_argument("--cache", type=Path, default=None,
                       help="feature cache folder (default: OUT/cache)")
        p.add_argument("--no-svm", action="store_true",
                       help="skip the frame-wise baseline (the SVM; for intensity the SVR)")
        p.add_argument("--fresh", action="store_true",
                       help="recompute every fit; by default the fits a killed run with the "
                            "same --out already finished (OUT/fits) are read back")
        p.add_argument("--no-figures", action="store_true", help="skip the figures")
        p.add_argument("--n-seeds", type=int, default=1,
                       help="train every network with this many seeds and average their "
                            "outputs (a seed ensemble; default 1: one network)")
        p.add_argument("--random-state", type=int, default=0,
                       help="seed of the demo corpus and of the networks (default 0)")
        p.add_argument("--speakers", type=int, default=None,
                       help="demo corpus only: number of speakers, >= 2 (default 10)")
        p.add_argument("--recordings-per-speaker", type=int, default=None,
                       help="demo corpus only: recordings per speaker, >= 1 (default 16)")
        p.add_argument("-q", "--quiet", action="store_true",
                       help="no progress bar, warnings only")

    p1 = sub.add_parser("table1", help="8 architectures x 4 sub-classes of one AU (LOSO)")
    common(p1)
    p1.add_argument("--au", default="AU17", choices=list(AUS), metavar="AU",
                    help=f"the AU whose 4 sub-classes are the targets (default AU17; one "
                         f"of {', '.join(AUS)})")
    p1.add_argument("--feature-set", default="ComParE_2016",
                    choices=list(experiments.FEATURE_SETS),
                    help="openSMILE feature set (default ComParE_2016)")
    p1.add_argument("--architectures", nargs="+", default=None, metavar="NAME",
                    choices=list(TABLE1_CONFIGS),
                    help="Table I architectures to run (default: all 8), e.g. "
                         "Stacked-NoAtt Enc-InterAtt-Dec")

    p2 = sub.add_parser("table2", help="one architecture x 8 AUs x 4 sub-classes x 2 "
                                       "feature sets (LOSO)")
    common(p2)
    p2.add_argument("--architecture", default="Enc-InterAtt-Dec", metavar="NAME",
                    choices=list(TABLE1_CONFIGS),
                    help="the Table I architecture (default Enc-InterAtt-Dec)")
    p2.add_argument("--feature-sets", nargs="+", default=list(experiments.FEATURE_SETS),
                    choices=list(experiments.FEATURE_SETS),
                    help="openSMILE feature sets (default: both)")
    p2.add_argument("--aus", nargs="+", default=list(AUS), choices=list(AUS), metavar="AU",
                    help="AUs whose 4 sub-classes are the targets (default: the paper's 8)")

    p3 = sub.add_parser("demo", help="a reduced but real run of both protocols on the demo "
                                     "corpus, with the oracle and the SVM baseline")
    common(p3)

    p4 = sub.add_parser("intensity", help="AU intensity regression: CCC and Pearson r per AU "
                                          "of the network regressors and the SVR (LOSO)")
    common(p4)
    p4.add_argument("--architectures", nargs="+", default=["Stacked-NoAtt"], metavar="NAME",
                    choices=list(TABLE1_CONFIGS),
                    help="Table I architectures, trained as regressors (default "
                         "Stacked-NoAtt)")
    p4.add_argument("--encoders", nargs="+", default=list(experiments.ENCODERS),
                    choices=list(experiments.ENCODERS),
                    help="sequence layers of every architecture (default: all three)")
    p4.add_argument("--aus", nargs="+", default=list(AUS), metavar="AU",
                    help="AUs whose intensities are the targets (default: the paper's 8), "
                         "or 'all': every AU of the corpus (with --manifest, every AUxx_r "
                         "column of the OpenFace CSVs)")
    p4.add_argument("--feature-sets", nargs="+", default=["eGeMAPSv02"],
                    choices=list(experiments.FEATURE_SETS),
                    help="openSMILE feature sets (default eGeMAPSv02)")
    p4.add_argument("--loss", choices=["mse", "ccc"], default="mse",
                    help="the networks' training loss: mean squared error (default) or "
                         "1 - CCC")
    return parser


def _aus(args):
    """The AUs a command needs (the only ones read from a manifest's AU files)."""
    if args.command == "table1":
        return [args.au]
    if args.command == "table2":
        return list(args.aus)
    if args.command == "intensity":
        return "all" if args.aus == ["all"] else list(args.aus)
    return list(experiments.DEMO_AUS)


def _check_args(parser, args):
    """Reject bad values before any corpus is made or feature extracted."""
    for name, low in (("speakers", 2), ("recordings_per_speaker", 1), ("epochs", 1),
                      ("n_seeds", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            parser.error(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    if args.n_jobs == 0:
        parser.error("--n-jobs must not be 0: give a number of processes, or -1 for all "
                     "cores")
    if args.manifest is not None and (args.speakers or args.recordings_per_speaker):
        parser.error("--speakers and --recordings-per-speaker apply to the demo corpus "
                     "only, not to --manifest")
    if args.manifest is not None and not args.manifest.is_file():
        parser.error(f"--manifest {args.manifest}: no such file")
    if args.scheduler and args.backend != "dask":
        parser.error("--scheduler needs --backend dask")
    if args.command == "intensity":
        _check_intensity_aus(parser, args)


def _check_intensity_aus(parser, args):
    if "all" in args.aus:
        if len(args.aus) > 1:
            parser.error("--aus all stands alone: give 'all' or a list of AUs")
        return
    try:
        args.aus = [au_name(au) for au in args.aus]
    except ValueError as exc:
        parser.error(f"argument --aus: {exc}")
    if len(set(args.aus)) < len(args.aus):
        parser.error(f"argument --aus: an AU is given twice in {args.aus}")
    unknown = [au for au in args.aus if au not in AUS]
    if args.manifest is None and unknown:
        parser.error(f"argument --aus: the demo corpus has no {', '.join(unknown)}; its AUs "
                     f"are {', '.join(AUS)}")


def _load_corpus(args):
    if args.manifest is not None:
        from .datasets import load_manifest

        return load_manifest(args.manifest, aus=_aus(args))
    from .datasets import make_speech_au_corpus

    kwargs = {}
    if args.speakers is not None:
        kwargs["n_speakers"] = args.speakers
    if args.recordings_per_speaker is not None:
        kwargs["recordings_per_speaker"] = args.recordings_per_speaker
    return make_speech_au_corpus(random_state=args.random_state, **kwargs)


@contextlib.contextmanager
def _backend(args):
    if args.backend != "dask":
        yield
        return
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - depends on the environment
        sys.exit("--backend dask needs the 'dask' extra: pip install 'sklearn_s2au[dask]'")
    import joblib

    client = Client(args.scheduler) if args.scheduler else Client(processes=True)
    logger.info("Dask client: %s", client)
    try:
        with joblib.parallel_backend("dask"):
            yield
    finally:
        client.close()


def _report(results, name, out, rows, note=None, oracle=None, paper=None):
    table = experiments.paper_table(results, rows=rows)
    _write_report(results, name, out, note,
                  [(f"## {name}: mean UAR % over leave-one-speaker-out folds",
                    experiments.to_markdown(table))], oracle=oracle, paper=paper)
    return table


def _intensity_report(results, out, note=None):
    rows = ["architecture", "encoder"]
    if results["feature_set"].nunique() > 1:
        rows.append("feature_set")
    sections = [(f"## intensity: mean {label} over leave-one-speaker-out folds",
                 experiments.to_markdown(experiments.intensity_table(results, metric, rows),
                                         float_format="{:.3f}"))
                for metric, label in (("ccc", "CCC"), ("r", "Pearson r"))]
    _write_report(results, "intensity", out, note, sections)


def _write_report(results, name, out, note, sections, oracle=None, paper=None):
    """Tidy results, and the Markdown tables (also printed) as OUT/NAME.md."""
    out.mkdir(parents=True, exist_ok=True)
    experiments.write_results(results, out, name)
    parts = []
    for i, (heading, markdown) in enumerate(sections):
        parts += [heading, ""]
        if note and i == 0:
            parts += [note, ""]
        parts += [markdown, ""]
    if oracle is not None:
        parts += ["Corpus oracle (frame classifier on the latent trajectories), UAR %:", "",
                  experiments.to_markdown(oracle), ""]
    if paper is not None:
        parts += ["The paper's numbers (GEMEP corpus), for reference only:", "",
                  experiments.to_markdown(paper), ""]
    text = "\n".join(parts)
    (out / f"{name}.md").write_text(text)
    print(text)


def _oracle_table(corpus, aus):
    """The corpus oracle's rows for ``aus`` (generated corpora only: callers check)."""
    oracle = corpus.oracle()
    oracle = oracle.loc[[a for a in aus if a in oracle.index]]
    return (100 * oracle).round(1)


def _cache(args):
    return args.cache or (args.out / "cache")


def _figures(args, corpus, results, name):
    if args.no_figures:
        return
    from . import plotting

    common = dict(max_epochs=args.epochs, settings=args.settings, memory=_cache(args),
                  random_state=args.random_state)
    # the timeline and attention figures show what the command ran
    if args.command == "intensity":
        # the network with the best mean CCC, on the last feature set
        feature_set = args.feature_sets[-1]
        networks = results[(results["architecture"] != experiments.SVR_NAME)
                           & (results["feature_set"] == feature_set)]
        architecture, encoder = experiments.intensity_table(networks)["mean"].idxmax()
        held_out = experiments.held_out_intensity(
            corpus, aus=list(dict.fromkeys(results["au"])), feature_set=feature_set,
            architecture=architecture, encoder=encoder, loss=args.loss, **common)
    else:
        if args.command == "table1":
            au, feature_set = args.au, args.feature_set
            archs = args.architectures or list(TABLE1_CONFIGS)
        elif args.command == "table2":
            au, feature_set, archs = args.aus[-1], args.feature_sets[-1], [args.architecture]
        else:
            au, feature_set = experiments.DEMO_AUS[-1], experiments.DEMO_FEATURE_SETS[-1]
            archs = list(experiments.DEMO_ARCHITECTURES)
        architecture = "Enc-InterAtt-Dec" if "Enc-InterAtt-Dec" in archs else archs[0]
        held_out = experiments.held_out_timeline(corpus, au=au, feature_set=feature_set,
                                                 architecture=architecture, **common)
    for path in plotting.protocol_figures(results, args.out / "figures", name=name,
                                          held_out=held_out):
        logger.info("wrote %s", path)


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    _check_args(parser, args)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(message)s")
    try:
        return _run(args)
    except (ValueError, TypeError, OSError) as exc:
        # a problem with the user's data or options: one line, not a traceback
        logger.debug("details", exc_info=True)
        parser.exit(2, f"{parser.prog} {args.command}: error: {exc}\n")


def _run(args):
    corpus = _load_corpus(args)
    demo = args.manifest is None
    cache = _cache(args)
    checkpoint = args.out / "fits"
    if args.fresh and checkpoint.is_dir():
        for path in checkpoint.glob("fit_*.csv"):
            path.unlink()
    common = dict(max_epochs=args.epochs, n_jobs=args.n_jobs, memory=cache,
                  settings=args.settings, checkpoint=checkpoint,
                  random_state=args.random_state, n_seeds=args.n_seeds,
                  verbose=0 if args.quiet else 1)
    baseline = not args.no_svm
    start = time.perf_counter()
    with _backend(args):
        if args.command == "table1":
            results = experiments.table1(corpus, au=args.au, feature_set=args.feature_set,
                                         architectures=args.architectures,
                                         svm=baseline, **common)
            _report(results, "table1", args.out, "architecture",
                    note=DEMO_NOTE if demo else None,
                    oracle=_oracle_table(corpus, [args.au]) if demo else None,
                    paper=experiments.PAPER_TABLE1)
        elif args.command == "table2":
            results = experiments.table2(corpus, architecture=args.architecture,
                                         feature_sets=args.feature_sets, aus=args.aus,
                                         svm=baseline, **common)
            _report(results, "table2", args.out, ["architecture", "feature_set"],
                    note=DEMO_NOTE if demo else None,
                    oracle=_oracle_table(corpus, args.aus) if demo else None,
                    paper=experiments.PAPER_TABLE2)
        elif args.command == "intensity":
            results = experiments.intensity(
                corpus, architectures=args.architectures, encoders=args.encoders,
                feature_sets=args.feature_sets,
                aus=None if args.aus == ["all"] else args.aus, loss=args.loss,
                svr=baseline, **common)
            _intensity_report(results, args.out, note=INTENSITY_NOTE if demo else None)
        else:
            results = experiments.demo(corpus, svm=baseline, **common)
            _report(results, "demo", args.out, ["architecture", "feature_set"],
                    note=DEMO_NOTE if demo else None,
                    oracle=_oracle_table(corpus, sorted(set(results["au"]))) if demo else None)
    logger.info("finished in %.1f s; tidy results in %s", time.perf_counter() - start,
                args.out)
    _figures(args, corpus, results, args.command)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
