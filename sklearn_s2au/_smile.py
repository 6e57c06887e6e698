"""openSMILE runs behind `OpenSmileLLD`: one pass, or one streamed pass in bounded memory.

A recording up to ``segment_seconds`` long is handed to openSMILE whole, as
:meth:`opensmile.Smile.process_signal` does it. A longer one is *streamed*: one run of
the same openSMILE LLD components, with every data level a ring buffer, whose audio
arrives ``segment_seconds`` at a time while it runs and whose frames are collected as
they come out. It is the same computation on the same samples in the same order, so its
frames are those of one pass, bit for bit, the end-of-input flush included (see
`_stream_lld`), while memory no longer grows with the length.

Restarting openSMILE on overlapping segments cannot give that: the ComParE F0-group
deltas divide by a normaliser that openSMILE accumulates from the start of its input and
never resets, their last frames come from an end-of-input flush that reads values
openSMILE does not output, and jitter and shimmer follow pitch periods from the start
of a voiced stretch, which in a sustained tone is the start of the recording.
"""

import atexit
import functools
import os
import tempfile
import threading
import time

import numpy as np
import pandas as pd

# openSMILE sink level(s) per feature set. ComParE_2016 reads both the LLD and the delta
# level in ONE openSMILE run: the sink's data reader concatenates the two levels frame by
# frame (by frame index), which is how openSMILE's own ComParE functionals read them.
_FEATURE_SETS = {
    "ComParE_2016": "lld;lld_de",
    "eGeMAPSv02": "lld",
}

# openSMILE's frame step (10 ms in both feature sets' configs; whole samples, see
# `_hop_samples`).
_HOP_SECONDS = 0.010

# The streamed configuration: the feature set's own LLD components (openSMILE's config
# files, included unchanged) and its LLD concatenation, without the functionals, which
# need the whole input. ``@CONFIG@`` is openSMILE's config folder, ``@HERE@`` the folder
# written for it (`_stream_config`).
_STREAM_CONFIGS = {
    "ComParE_2016": r"""
[componentInstances:cComponentManager]
instance[dataMemory].type=cDataMemory

\{@HERE@/source.conf.inc}
\{@CONFIG@/compare/ComParE_2016_core.lld.conf.inc}

[componentInstances:cComponentManager]
instance[is13_lldconcat].type=cVectorConcat
instance[is13_llddeconcat].type=cVectorConcat

[is13_lldconcat:cVectorConcat]
reader.dmLevel = is13_lld_nzsmo;is13_lldA_smo;is13_lldB_smo
writer.dmLevel = lld
includeSingleElementFields = 1

[is13_llddeconcat:cVectorConcat]
reader.dmLevel = is13_lld_nzsmo_de;is13_lldA_smo_de;is13_lldB_smo_de
writer.dmLevel = lld_de
includeSingleElementFields = 1

\{@CONFIG@/shared/standard_external_data_output_single.conf.inc}
""",
    "eGeMAPSv02": r"""
[componentInstances:cComponentManager]
instance[dataMemory].type=cDataMemory
printLevelStats=0

\{@HERE@/source.conf.inc}
\{@CONFIG@/gemaps/v01b/GeMAPSv01b_core.lld.conf.inc}
\{@CONFIG@/egemaps/v02/eGeMAPSv02_core.lld.conf.inc}

[componentInstances:cComponentManager]
instance[lldconcat].type=cVectorConcat

[lldconcat:cVectorConcat]
reader.dmLevel = egemapsv02_lldsetE_smo;egemapsv02_lldsetF_smo
writer.dmLevel = lld
includeSingleElementFields = 1

\{@CONFIG@/shared/standard_external_data_output_single.conf.inc}
""",
}

# openSMILE's external audio source (as in its standard_external_wave_input.conf.inc)
# writing into a ring buffer of ``waveRing`` samples instead of a level that keeps the
# whole recording.
_STREAM_SOURCE = r"""
[componentInstances:cComponentManager]
instance[extsource].type=cExternalAudioSource

[extsource:cExternalAudioSource]
writer.dmLevel = wave
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = \cm[waveRing{160000}:samples held by the wave ring buffer]
sampleRate = \cm[sampleRate{16000}:sample rate]
nBits = 16
channels = 1
"""

# The levels that openSMILE's configs keep whole for the functionals (BufferMode.conf.inc:
# growing, 1000 frames to start with), as ring buffers of those 1000 frames (10 s).
_STREAM_RING = """
writer.levelconf.growDyn = 0
writer.levelconf.isRb = 1
writer.levelconf.nT = 1000
"""

# Audio the wave ring buffer holds beyond one block: more than openSMILE's readers of the
# wave level lag behind its writer (the jitter and shimmer component reads the pitch
# periods of frames whose F0 comes out of the Viterbi smoother 1.5 s late), so a block
# always fits once openSMILE has caught up. openSMILE's file source buffers 5 s too.
_WAVE_SLACK_SECONDS = 5.0
# How often a block that does not fit yet is offered again, and how long openSMILE may
# take neither audio nor give frames before the run counts as stuck.
_POLL_SECONDS = 0.002
_STALL_SECONDS = 300.0


@functools.lru_cache(maxsize=None)
def _smile(feature_set):
    """The openSMILE extractor of a feature set, built once per process.

    Kept out of the estimator so that it is never pickled or cloned; worker processes
    build their own on first use.
    """
    import opensmile

    return opensmile.Smile(feature_set=opensmile.FeatureSet[feature_set],
                           feature_level=_FEATURE_SETS[feature_set])


def _feature_names(feature_set):
    return np.asarray(_smile(feature_set).feature_names, dtype=object)


def _hop_samples(sampling_rate):
    """openSMILE's frame step in samples: 10 ms rounded half up (221 at 22.05 kHz)."""
    return int(np.floor(_HOP_SECONDS * sampling_rate + 0.5))


def _hop_and_window(start0, end0, start1, sampling_rate):
    """Hop and analysis window in seconds from the first two frames' time stamps.

    ``start0``, ``end0`` and ``start1`` are :class:`pandas.Timedelta` as
    :meth:`opensmile.Smile.process_signal` reports them (whole nanoseconds). openSMILE's
    reported start times of the last frames, flushed at the end of the input, repeat the
    previous time stamp, so frame times are rebuilt from the frame index.
    """
    hop = (start1 - start0).total_seconds()
    if round(hop * sampling_rate) != _hop_samples(sampling_rate):
        raise RuntimeError(f"OpenSmileLLD: openSMILE's frame step is {hop} s at "
                           f"{sampling_rate} Hz, not the expected "
                           f"{_hop_samples(sampling_rate)} samples; please report this.")
    return hop, (end0 - start0).total_seconds()


def _lld_blocks(feature_set, samples, n_samples, sampling_rate, segment_seconds, label):
    """openSMILE's LLD frames of a recording, as one-pass extraction gives them, in blocks.

    ``samples(start, stop)`` gives openSMILE's float32 input for a span of the recording.
    Yields ``(first, values, hop, window)``: LLD frames ``first ... first + len(values) - 1``
    (float32 ``(n, n_features)``), hop and window in seconds. A recording longer than
    ``segment_seconds`` is streamed (`_stream_lld`), the others go in one call.
    """
    block = None if segment_seconds is None else int(segment_seconds * sampling_rate)
    if block is None or n_samples <= block:
        lld = _smile(feature_set).process_signal(samples(0, n_samples), sampling_rate)
        (start0, end0), (start1, _) = lld.index[0], lld.index[1]
        yield (0, lld.to_numpy(dtype=np.float32),
               *_hop_and_window(start0, end0, start1, sampling_rate))
        return
    yield from _stream_lld(feature_set, samples, n_samples, sampling_rate, block, label)


@functools.lru_cache(maxsize=None)
def _stream_config(feature_set):
    """Path of the streamed configuration of a feature set, written once per process
    into a temporary folder that is removed when the interpreter exits."""
    folder = tempfile.TemporaryDirectory(prefix="sklearn_s2au_smile_")
    atexit.register(folder.cleanup)
    files = {"source.conf.inc": _STREAM_SOURCE, "ring.conf.inc": _STREAM_RING,
             "lld.conf": _STREAM_CONFIGS[feature_set]
             .replace("@HERE@", folder.name.replace(os.sep, "/"))
             .replace("@CONFIG@", _smile(feature_set).default_config_root.replace(os.sep, "/"))}
    for name, text in files.items():
        with open(os.path.join(folder.name, name), "w", encoding="ascii") as out:
            out.write(text)
    return os.path.join(folder.name, "lld.conf")


def _stream_options(feature_set, sampling_rate, wave_ring):
    config_root = _smile(feature_set).default_config_root
    return {
        "sinkLevel": _FEATURE_SETS[feature_set],
        "sampleRate": sampling_rate,
        "waveRing": wave_ring,
        # openSMILE's own buffer modes for ring-buffer and lagged levels, as
        # opensmile.Smile passes them, and ring buffers for the levels it keeps whole
        "bufferModeRbConf": os.path.join(config_root, "shared", "BufferModeRb.conf.inc"),
        "bufferModeRbLagConf": os.path.join(config_root, "shared",
                                            "BufferModeRbLag.conf.inc"),
        "bufferModeConf": os.path.join(os.path.dirname(_stream_config(feature_set)),
                                       "ring.conf.inc"),
    }


def _pcm16(x):
    """openSMILE's 16-bit input for float samples, converted as opensmile.Smile does it."""
    return (np.asarray(x, dtype=np.float32) * np.float32(32768)).astype(np.int16).tobytes()


def _stream_lld(feature_set, samples, n_samples, sampling_rate, block, label):
    """One openSMILE run over a recording fed ``block`` samples at a time; see `_lld_blocks`.

    openSMILE runs in a thread and its sink hands every frame to a callback; this
    generator offers the audio block by block (a block that does not fit in the wave ring
    buffer yet is offered again once openSMILE has read on) and yields the frames that
    have come out meanwhile. The run differs from one pass only in when audio arrives:
    openSMILE processes whatever its levels hold, and it signals and flushes the end of
    the input only once every component has caught up with all of the audio, as in one
    pass. Closing the generator early stops the run.
    """
    from opensmile.core.config import config
    from opensmile.core.lib import OpenSMILE

    source, sink = config.EXTERNAL_SOURCE_COMPONENT, config.EXTERNAL_OUTPUT_COMPONENT
    settings = _smile(feature_set)
    wave_ring = block + int(_WAVE_SLACK_SECONDS * sampling_rate)
    smile = OpenSMILE()
    try:
        smile.initialize(config_file=_stream_config(feature_set),
                         options=_stream_options(feature_set, sampling_rate, wave_ring),
                         loglevel=settings.loglevel, log_file=settings.logfile)
    except BaseException:
        smile.free()
        raise
    lock = threading.Lock()
    rows, times, failure = [], [], []

    def collect(data, meta):  # called in openSMILE's thread, one frame at a time
        with lock:
            rows.append(data.copy())
            if len(times) < 2:
                times.append((meta.time, meta.time + meta.lengthSec))

    def run():
        try:
            smile.run()
        except BaseException as err:  # re-raised in the generator's thread
            failure.append(err)

    def ready():
        """The frames come out since the last call, as a block; None if none (or while
        fewer than two frames have come out: the first two give the frame timing)."""
        nonlocal first, timing
        with lock:
            if not rows or len(times) < 2:
                return None
            values = np.concatenate(rows)
            rows.clear()
        if timing is None:
            # the time stamps as opensmile.Smile reports them: seconds to whole ns, and
            # the first frame's start replaced by the signal's start, 0
            (_, end0), (start1, _) = (pd.to_timedelta(np.asarray(t), "s") for t in times)
            timing = _hop_and_window(pd.Timedelta(0), end0, start1, sampling_rate)
        block_first, first = first, first + len(values)
        return block_first, values, *timing

    smile.external_sink_set_callback_ex(sink, collect)
    runner = threading.Thread(target=run, name=f"openSMILE {label!r}", daemon=True)
    first, timing = 0, None
    runner.start()
    try:
        for start in range(0, n_samples, block):
            pcm = _pcm16(samples(start, min(start + block, n_samples)))
            waited_since = time.monotonic()
            while not smile.external_audio_source_write_data(source, pcm):
                if not runner.is_alive():
                    raise failure[0] if failure else RuntimeError(
                        f"OpenSmileLLD: openSMILE stopped before the end of recording "
                        f"{label!r} while streaming it; please report this, and use "
                        f"segment_seconds=None (one pass) meanwhile.")
                out = ready()
                if out is not None:
                    waited_since = time.monotonic()
                    yield out
                elif time.monotonic() - waited_since > _STALL_SECONDS:
                    raise RuntimeError(
                        f"OpenSmileLLD: openSMILE took no audio of recording {label!r} and "
                        f"gave no frames for {_STALL_SECONDS:g} s while streaming it; "
                        f"please report this, and use segment_seconds=None (one pass) "
                        f"meanwhile.")
                time.sleep(_POLL_SECONDS)
            out = ready()
            if out is not None:
                yield out
        smile.external_audio_source_set_eoi(source)
        runner.join()
        if failure:
            raise failure[0]
        out = ready()
        if out is not None:
            yield out
    finally:
        if runner.is_alive():  # closed early, or an error here: stop openSMILE
            smile.abort()
            runner.join()
        smile.free()
