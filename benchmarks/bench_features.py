"""Throughput of `OpenSmileLLD` against calling openSMILE directly.

Generates synthetic speech-like recordings (a harmonic series on a wandering f0 with a
syllable-rate envelope, plus noise) and times, in one run on the same audio:

* ``direct``: ``opensmile.Smile.process_signal`` of every openSMILE level the feature set
  needs (for ComParE_2016 the LLD and the delta level), recording by recording, with the
  ``Smile`` objects built beforehand (not timed);
* ``OpenSmileLLD`` at ``n_jobs=1`` and at ``n_jobs=2``, from the recordings table to the
  frame table (25 Hz grid, peak normalisation). For ``n_jobs=2`` the first call pays for
  starting the worker processes ("cold"); a second call reuses them ("warm").

Throughput is seconds of audio per second of wall time. Goals (ComParE_2016): ratio to
direct >= 0.9 at n_jobs=1 and >= 1.7 at n_jobs=2.

``--long 1 10 30`` instead measures long recordings: for each length (minutes) one
recording, extracted in a fresh Python process each time, streamed through openSMILE in
blocks (``segment_seconds=60``, the default) and in one pass (``segment_seconds=None``);
it prints the wall time and the child's peak RSS (``VmHWM``, Linux), and checks that both
give the same frames (compared in the parent). The child reads a 16-bit WAV file
(``--source file``, the default) or is given the float32 samples in memory (``--source
signal``, where the recording itself is part of the child's peak); one pass runs up to
``--one-pass-up-to`` minutes (30), beyond which it would need several GB.

Run::

    .venv/bin/python benchmarks/bench_features.py
    .venv/bin/python benchmarks/bench_features.py --feature-set eGeMAPSv02 --n-recordings 40
    .venv/bin/python benchmarks/bench_features.py --long 1 10 30 120
"""

import argparse
import os
import time

import numpy as np
import pandas as pd


def speech_like(duration, sampling_rate, rng):
    """Harmonic series on a wandering f0 (90-250 Hz), 4 Hz syllable envelope, noise."""
    n = int(round(duration * sampling_rate))
    t = np.arange(n) / sampling_rate
    f0 = rng.uniform(110, 200) * np.exp(0.15 * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t
                                                      + rng.uniform(0, 2 * np.pi)))
    phase = 2 * np.pi * np.cumsum(f0) / sampling_rate
    n_harmonics = 12
    amplitudes = rng.uniform(0.3, 1.0, n_harmonics) / np.arange(1, n_harmonics + 1)
    voiced = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amplitudes))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None)
    x = voiced * envelope + 0.02 * rng.standard_normal(n)
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32)


def make_recordings(n_recordings, sampling_rate, seed):
    rng = np.random.default_rng(seed)
    durations = rng.uniform(1.0, 4.0, n_recordings)
    return pd.DataFrame(
        {"speaker": [f"s{i % 5}" for i in range(n_recordings)],
         "signal": [speech_like(d, sampling_rate, rng) for d in durations],
         "sampling_rate": sampling_rate},
        index=[f"rec{i:03d}" for i in range(n_recordings)])


def time_direct(X, feature_set):
    import opensmile

    levels = (["lld", "lld_de"] if feature_set == "ComParE_2016" else ["lld"])
    smiles = [opensmile.Smile(feature_set, level) for level in levels]
    start = time.perf_counter()
    for signal, rate in zip(X["signal"], X["sampling_rate"]):
        for smile in smiles:
            smile.process_signal(signal, rate)
    return time.perf_counter() - start


def time_estimator(X, feature_set, n_jobs):
    from sklearn_s2au.features import OpenSmileLLD

    start = time.perf_counter()
    frames = OpenSmileLLD(feature_set, n_jobs=n_jobs).fit_transform(X)
    elapsed = time.perf_counter() - start
    assert len(frames) == len(X)
    return elapsed


_CHILD = """
import time
import numpy as np, pandas as pd
from sklearn_s2au.features import OpenSmileLLD
if {source!r} == "file":
    X = pd.DataFrame({{"speaker": ["s"], "file": [{signal!r}]}})
else:
    x = np.load({signal!r})
    X = pd.DataFrame({{"speaker": ["s"], "signal": [x], "sampling_rate": [{rate}]}})
start = time.perf_counter()
out = OpenSmileLLD({feature_set!r}, segment_seconds={segment}).fit_transform(X)
elapsed = time.perf_counter() - start
np.save({path!r}, out["features"].iloc[0])
# VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(elapsed, int(hwm.split()[1]) / 1024)
"""


def long_recordings(minutes, feature_set, sampling_rate, source, one_pass_up_to):
    """Peak RSS and time of one long recording, streamed and in one pass."""
    import subprocess
    import sys
    import tempfile

    import soundfile

    print(f"{feature_set}, one recording at {sampling_rate} Hz from a "
          f"{'16-bit WAV file' if source == 'file' else 'float32 signal in memory'}, each "
          f"run in a fresh process; load average {os.getloadavg()[0]:.2f}")
    print(f"{'minutes':>7s} {'mode':>12s} {'wall s':>8s} {'peak RSS MB':>12s}")
    with tempfile.TemporaryDirectory() as tmp:
        for m in minutes:
            # the audio is made here and read by the child (a WAV file, or float32 .npy
            # loaded whole), so the child's peak is the extraction's, not that of making
            # the test signal
            x = speech_like(60.0 * m, sampling_rate, np.random.default_rng(0))
            if source == "file":
                signal = os.path.join(tmp, f"{m}.wav")
                soundfile.write(signal, x, sampling_rate, subtype="PCM_16")
            else:
                signal = os.path.join(tmp, f"{m}.npy")
                np.save(signal, x)
            del x
            arrays = {}
            modes = [("streamed", 60.0)] + ([("one pass", None)] if m <= one_pass_up_to
                                            else [])
            for mode, segment in modes:
                path = os.path.join(tmp, f"{m}_{segment}.npy")
                code = _CHILD.format(signal=signal, rate=sampling_rate, source=source,
                                     feature_set=feature_set, segment=segment, path=path)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                     text=True, check=True).stdout.split()
                print(f"{m:7g} {mode:>12s} {float(out[0]):8.1f} {float(out[1]):12.0f}",
                      flush=True)
                arrays[mode] = np.load(path)
            if len(arrays) < 2:
                print(f"{'':7s} (one pass not run above {one_pass_up_to:g} min)")
                continue
            a, b = arrays["streamed"], arrays["one pass"]
            differ = (a != b).any(1)
            print(f"{'':7s} identical: {bool(not differ.any())}; frames that differ: "
                  f"{int(differ.sum())} of {len(a)}"
                  + (f" (last at frame {np.flatnonzero(differ)[-1]}), max |diff| "
                     f"{np.abs(a - b).max():.3g}" if differ.any() else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-recordings", type=int, default=48)
    parser.add_argument("--sampling-rate", type=int, default=16000)
    parser.add_argument("--feature-set", default="ComParE_2016",
                        choices=["ComParE_2016", "eGeMAPSv02"])
    parser.add_argument("--repeat", type=int, default=2,
                        help="best of this many runs (n_jobs=2 warm: after the cold run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--long", type=float, nargs="+", metavar="MINUTES",
                        help="measure long recordings of these lengths instead")
    parser.add_argument("--source", choices=["file", "signal"], default="file",
                        help="--long: read a WAV file, or a float32 signal given in memory")
    parser.add_argument("--one-pass-up-to", type=float, default=30.0, metavar="MINUTES",
                        help="--long: also extract in one pass (to compare) up to this "
                             "length")
    args = parser.parse_args(argv)
    if args.long:
        long_recordings(args.long, args.feature_set, args.sampling_rate,
                        args.source, args.one_pass_up_to)
        return

    X = make_recordings(args.n_recordings, args.sampling_rate, args.seed)
    audio_s = sum(len(s) for s in X["signal"]) / args.sampling_rate
    print(f"{len(X)} recordings, {audio_s:.1f} s of audio at {args.sampling_rate} Hz, "
          f"{args.feature_set}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} (other processes skew the timings)")

    direct = min(time_direct(X, args.feature_set) for _ in range(args.repeat))
    rows = [("direct openSMILE (sequential)", direct)]
    rows.append(("OpenSmileLLD n_jobs=1",
                 min(time_estimator(X, args.feature_set, 1) for _ in range(args.repeat))))
    rows.append(("OpenSmileLLD n_jobs=2 (cold)", time_estimator(X, args.feature_set, 2)))
    rows.append(("OpenSmileLLD n_jobs=2 (warm)",
                 min(time_estimator(X, args.feature_set, 2) for _ in range(args.repeat))))

    print(f"{'':32s} {'wall s':>8s} {'audio s/s':>10s} {'vs direct':>10s}")
    for name, elapsed in rows:
        print(f"{name:32s} {elapsed:8.3f} {audio_s / elapsed:10.1f} {direct / elapsed:9.2f}x")


if __name__ == "__main__":
    main()
