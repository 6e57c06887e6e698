"""openSMILE low-level descriptors (LLDs) of recordings, on the shared frame grid.

`OpenSmileLLD` turns a recordings table (one row per recording: audio file or signal,
and the speaker) into a frame table: one ``float32`` array ``(n_frames, n_features)`` per
recording with ``n_frames = frame_count(duration, frame_rate)``, the grid of
:mod:`sklearn_s2au.framing` that the labels use as well. The openSMILE runs themselves
(one pass, or streamed for long recordings) are in ``sklearn_s2au._smile``.
"""

import logging
import numbers
import os

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import BaseEstimator, TransformerMixin
from tqdm.auto import tqdm

from ._smile import _FEATURE_SETS, _feature_names, _lld_blocks
from ._utils import object_array
from ._validation import FEATURES_COL, sequence_input_tags
from .framing import _GridAverager, frame_count

__all__ = ["OpenSmileLLD", "MIN_DURATION"]

_logger = logging.getLogger(__name__)

#: Shortest recording accepted, in seconds. openSMILE needs one full analysis window of
#: its longest descriptor (60 ms for the voicing LLDs of both feature sets) to emit any
#: frame and fills shorter segments with NaN; 0.1 s leaves at least 5 LLD frames.
MIN_DURATION = 0.1

# openSMILE converts float samples to 16-bit integers by ``int16(x * 32768)``, which wraps
# around (1.0 becomes -32768) instead of saturating. So float signals are kept within
# [-1, 32767 / 32768] and the peak is normalised to 32767 / 32768 (-0.00027 dBFS).
_INT16_PEAK = 32767 / 32768

# Samples per block of the whole-signal checks of long recordings (no full-size copies).
_BLOCK = 1 << 20

# Chunks per worker for n_jobs > 1: enough to balance recordings of unequal length,
# few enough that per-task overhead stays negligible.
_CHUNKS_PER_WORKER = 4


def _recording(label):
    return f"recording {label!r}"


def _show(value):
    """repr of a cell value, without numpy's ``np.float64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _resolve_feature_set(feature_set):
    """Canonical feature set name for a string or ``opensmile.FeatureSet``."""
    name = getattr(feature_set, "name", feature_set)  # opensmile.FeatureSet member
    if isinstance(name, str):
        for valid in _FEATURE_SETS:
            if name.lower() == valid.lower():
                return valid
    raise ValueError(
        f"OpenSmileLLD: feature_set={feature_set!r} is not supported; valid values are "
        f"{sorted(_FEATURE_SETS)} (as strings or opensmile.FeatureSet members).")


def _file_error(file, label, err):
    return ValueError(
        f"OpenSmileLLD: cannot read the audio file {file!r} of {_recording(label)} "
        f"({type(err).__name__}: {err}). Give a readable audio file (WAV, FLAC, OGG, "
        f"or MP3/MP4 with ffmpeg installed) or pass the samples in a 'signal' column "
        f"with 'sampling_rate'.")


def _channels_error(file, label, n_channels):
    return ValueError(
        f"OpenSmileLLD: the audio file {file!r} of {_recording(label)} has "
        f"{n_channels} channels; mono and stereo files are accepted (stereo is "
        f"mixed down). Mix it down to mono or stereo first, or pass the samples in a "
        f"'signal' column with 'sampling_rate'.")


def _mix_down(channels):
    """Mono float32 samples of ``(n_channels, n)`` float32 channels, as audiofile users
    mix them: a mono file's only channel as is (a view), stereo averaged."""
    return channels[0] if channels.shape[0] == 1 else channels.mean(axis=0,
                                                                    dtype=np.float32)


class _SoundFileReader:
    """Mono float32 samples of an audio file that soundfile reads, span by span.

    The spans are read in order (a seek only when a span does not start where the last
    one stopped), with the same ``soundfile`` call :func:`audiofile.read` makes for these
    formats (float32), and mixed down as `_read_audio` mixes the whole file, so a span
    holds exactly the samples of the whole file there while memory holds one span.
    """

    def __init__(self, file, label):
        import soundfile

        self.file, self.label = file, label
        try:
            self._sound = soundfile.SoundFile(file)
        except Exception as err:  # soundfile raises its own LibsndfileError
            raise _file_error(file, label, err) from err
        if self._sound.channels > 2:
            self.close()
            raise _channels_error(file, label, self._sound.channels)
        self.size, self.sampling_rate = self._sound.frames, self._sound.samplerate
        self._position = 0

    def __call__(self, start, stop):
        try:
            if start != self._position:
                self._sound.seek(start)
            block = self._sound.read(stop - start, dtype="float32", always_2d=True)
        except Exception as err:
            raise _file_error(self.file, self.label, err) from err
        self._position = start + len(block)
        if len(block) != stop - start:
            raise ValueError(
                f"OpenSmileLLD: the audio file {self.file!r} of {_recording(self.label)} "
                f"gave {len(block)} samples from sample {start} where its header promises "
                f"{stop - start}; the file is truncated or corrupt. Repair or re-encode "
                f"it, or pass the samples in a 'signal' column with 'sampling_rate'.")
        return _mix_down(block.T)

    def close(self):
        self._sound.close()


def _read_audio(file, label):
    """A reader of the mono float32 samples of an audio file: ``reader(start, stop)``,
    with ``reader.size`` samples at ``reader.sampling_rate``; ``reader.close()`` after use.

    Formats that soundfile reads (:data:`audiofile`'s own list: WAV, FLAC, MP3, OGG) are
    read span by span (`_SoundFileReader`), so that a long recording is never held
    whole; the others go through :func:`audiofile.read` (which converts them with
    ffmpeg or sox) whole. Either way the samples are those of :func:`audiofile.read`,
    mixed down from stereo.
    """
    from audiofile.core.utils import SNDFORMATS, file_extension

    if file_extension(file) in SNDFORMATS:
        return _SoundFileReader(file, label)
    import audiofile

    try:
        signal, sampling_rate = audiofile.read(file, always_2d=True)
    except Exception as err:  # soundfile, sox and ffmpeg each raise their own errors
        raise _file_error(file, label, err) from err
    if signal.shape[0] > 2:
        raise _channels_error(file, label, signal.shape[0])
    return _ArrayReader(_mix_down(signal), sampling_rate)


class _ArrayReader:
    """`_read_audio`'s reader interface over samples held in memory."""

    def __init__(self, x, sampling_rate):
        self.x, self.size, self.sampling_rate = x, x.size, sampling_rate

    def __call__(self, start, stop):
        return self.x[start:stop]

    def close(self):
        pass


def _as_mono(signal, label):
    """1-D float32 samples in [-1, 1] from 1-D, stereo or integer-typed input."""
    x = np.asarray(signal)
    if x.ndim == 2 and x.size == 0:
        # (0, 2), (2, 0), ...: no samples at all, which the duration check reports
        x = x.reshape(0)
    if x.ndim == 2 and min(x.shape) in (1, 2):
        # (n, 1|2) or (1|2, n): channels are the short axis; mixed down below.
        channel_axis = 0 if x.shape[0] <= x.shape[1] else 1
    elif x.ndim == 1:
        channel_axis = None
    else:
        raise ValueError(
            f"OpenSmileLLD: the signal of {_recording(label)} has shape {x.shape}; expected a "
            f"1-D array of samples, or a stereo array of shape (n_samples, 2) or "
            f"(2, n_samples) which is mixed down.")
    if x.dtype == np.int16:
        x = x.astype(np.float32) / np.float32(32768)
    elif x.dtype == np.int32:
        x = (x / 2147483648.0).astype(np.float32)
    elif x.dtype.kind == "f":
        x = x.astype(np.float32, copy=False)
    else:
        raise ValueError(
            f"OpenSmileLLD: the signal of {_recording(label)} has dtype {x.dtype}; give float "
            f"samples in [-1, 1] or int16/int32 PCM samples (full scale 2**15 / 2**31).")
    if channel_axis is not None:
        x = x.mean(axis=channel_axis, dtype=np.float32)
    return x


def _scan(read, size):
    """Index of the first NaN or inf sample (or None), the largest absolute sample and the
    largest sample, reading ``read(start, stop)`` block by block (no full-size copies)."""
    peak, top = 0.0, -np.inf
    for start in range(0, size, _BLOCK):
        block = read(start, min(start + _BLOCK, size))
        bad = ~np.isfinite(block)
        if bad.any():
            return start + int(np.flatnonzero(bad)[0]), None, None
        peak = max(peak, float(np.max(np.abs(block))))
        top = max(top, float(np.max(block)))
    return None, peak, top


def _prepare(reader, label, normalise_peak):
    """Validate a recording's samples; a function giving openSMILE's input for a span.

    ``reader(start, stop)`` gives the mono float32 samples of a span (``reader.size``
    samples at ``reader.sampling_rate``). The samples handed to openSMILE
    (peak-normalised, or saturated at full scale) are made span by span, so a long
    recording is never copied (or, from a file, read) whole; a span holds exactly the
    values that the whole prepared signal would hold there.
    """
    size, sampling_rate = reader.size, reader.sampling_rate
    duration = size / sampling_rate
    if duration < MIN_DURATION:
        raise ValueError(
            f"OpenSmileLLD: {_recording(label)} lasts {duration:.5g} s ({size} samples at "
            f"{sampling_rate} Hz); openSMILE needs at least {MIN_DURATION} s (one 60 ms "
            f"analysis window plus a few frames). Remove it or give a longer recording.")
    first, peak, top = _scan(reader, size)
    if first is not None:
        raise ValueError(
            f"OpenSmileLLD: the signal of {_recording(label)} has a non-finite sample (NaN or "
            f"inf) at sample {first} ({first / sampling_rate:.3f} s); clean the audio.")
    if normalise_peak:
        if peak == 0.0:
            raise ValueError(
                f"OpenSmileLLD: {_recording(label)} is silent (all samples are 0), so its "
                f"peak cannot be normalised; remove it or set normalise_peak=False.")
        scale = np.float32(_INT16_PEAK / peak)
        return lambda start, stop: reader(start, stop) * scale
    if peak > 1.0:
        raise ValueError(
            f"OpenSmileLLD: the signal of {_recording(label)} reaches {peak:.4g}, outside "
            f"[-1, 1]; openSMILE reads 16-bit samples and would wrap it around. Set "
            f"normalise_peak=True or scale the float signal into [-1, 1].")
    if top > _INT16_PEAK:  # only +1.0 itself: saturate it as a 16-bit converter would
        return lambda start, stop: np.minimum(reader(start, stop), np.float32(_INT16_PEAK))
    return reader


def _extract_one(feature_set, label, file, signal, sampling_rate, frame_rate,
                 normalise_peak, segment_seconds=None):
    """LLDs of one recording on the frame grid: float32 ``(n_frames, n_features)``."""
    reader = (_read_audio(file, label) if file is not None
              else _ArrayReader(_as_mono(signal, label), sampling_rate))
    try:
        samples = _prepare(reader, label, normalise_peak)
        size, sampling_rate = reader.size, reader.sampling_rate
        names = _feature_names(feature_set)
        grid = _GridAverager(frame_count(size / sampling_rate, frame_rate), len(names),
                             frame_rate, dtype=np.float32)
        for first, values, hop, window in _lld_blocks(feature_set, samples, size,
                                                      sampling_rate, segment_seconds,
                                                      label):
            if not np.isfinite(values).all():
                row, column = np.argwhere(~np.isfinite(values))[0]
                raise ValueError(
                    f"OpenSmileLLD: openSMILE returned a non-finite value for "
                    f"{_recording(label)} (LLD frame {first + row}, feature "
                    f"{names[column]!r}); this should not happen for a valid recording: "
                    f"check that the audio is not corrupt.")
            # LLD frame i starts at i * hop (a whole number of samples, so hop is 10 ms
            # only up to rounding at rates such as 22.05 kHz) and is centred half a
            # window later.
            centres = np.arange(first, first + len(values)) * hop + window / 2
            grid.add(centres, values, final=False)
        return grid.result()
    finally:
        reader.close()


def _extract_chunk(positions, jobs, feature_set, frame_rate, normalise_peak,
                   segment_seconds):
    """Worker task: extract the recordings of one chunk with one openSMILE extractor."""
    return positions, [_extract_one(feature_set, *job, frame_rate, normalise_peak,
                                    segment_seconds) for job in jobs]


class OpenSmileLLD(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):
    """openSMILE low-level descriptors of each recording, on the frame grid.

    Extracts the frame-level descriptors (LLDs) of the paper with openSMILE and brings them
    from openSMILE's 100 Hz onto the frame grid of :mod:`sklearn_s2au.framing` at
    ``frame_rate``, so features and labels of a recording have the same number of frames.

    * ``"ComParE_2016"``: the paper's 130-d set, the 65 ComParE LLDs followed by their 65
      first-order deltas (``*_de``). Both levels come from a single openSMILE run whose
      output reader joins them by openSMILE's frame index: row ``i`` is the LLDs and the
      deltas of frame ``i``. (Run separately, the delta level has two more rows than the
      LLD level: frames flushed at the end of the input, whose LLDs openSMILE does not
      emit and which carry repeated time stamps, so joining the two outputs on their
      ``(start, end)`` index would be ambiguous; the single run avoids that and returns
      exactly the LLD level and the matching rows of the delta level.)
    * ``"eGeMAPSv02"``: the 25 eGeMAPS v02 LLDs (the paper reports 28-d eGeMAPS LLDs;
      openSMILE's eGeMAPSv02 LLD level has 25).

    **Frame grid rule.** LLD frame ``i`` covers the analysis window
    ``[i * hop, i * hop + window)`` (openSMILE's hop, 10 ms up to whole samples, and its
    reported window, 60 ms for ComParE_2016 and 20 ms for eGeMAPSv02). It is assigned to
    grid frame ``k = floor(centre * frame_rate)`` whose interval
    ``[k / frame_rate, (k + 1) / frame_rate)`` contains the window centre
    ``centre = i * hop + window / 2``, and the LLD frames of a grid frame are averaged.
    Grid frames that receive no LLD frame (the first and last few at 100 Hz, before the
    first and after the last window centre) are filled by
    :func:`~sklearn_s2au.framing.to_frame_grid`: linear interpolation inside, nearest frame
    at the ends. A recording of ``n_samples`` at ``sampling_rate`` always gets exactly
    ``frame_count(n_samples / sampling_rate, frame_rate)`` rows.

    **Audio.** Stereo is mixed down (mean of the channels); audio files with more than
    two channels are rejected. Integer signals are PCM: ``int16`` is divided by 32768
    (``int32`` by 2**31); float signals must lie in [-1, 1].
    openSMILE works at the recording's own sampling rate (8 kHz to 48 kHz tested). With
    ``normalise_peak`` (the paper normalised its audio to 0 dB peak) each recording is
    scaled so that its largest absolute sample is full scale (32767 / 32768, the largest
    16-bit value, because openSMILE reads 16-bit samples). Recordings shorter than
    :data:`MIN_DURATION` (0.1 s) are rejected.

    Parameters
    ----------
    feature_set : {"ComParE_2016", "eGeMAPSv02"} or opensmile.FeatureSet, \
            default="ComParE_2016"
        The openSMILE feature set (names are matched case-insensitively).
    frame_rate : float, default=25
        Frames per second of the output grid: 25 is the video and label rate of the
        paper, 100 keeps openSMILE's rate.
    normalise_peak : bool, default=True
        Scale every recording to 0 dB peak before extraction.
    segment_seconds : float or None, default=60.0
        Recordings longer than this are streamed through openSMILE in blocks of this
        many seconds (one openSMILE run with ring buffers, fed while it runs), so
        openSMILE's memory stays bounded whatever the length; the frames are identical
        to one-pass extraction (see Notes). None extracts every recording in one pass.
    speaker_col : str, default="speaker"
        Column of the recordings table that holds the speaker; passed to the output.
    n_jobs : int, default=None
        Processes extracting in parallel (joblib; ``None`` means 1 unless in a
        :func:`joblib.parallel_config` context, -1 means all cores). Recordings are
        dealt out in a few chunks per worker.
    verbose : int, default=0
        Show a progress bar (tqdm) over the recordings when > 0.

    Attributes
    ----------
    feature_names_ : ndarray of str, shape (n_features,)
        Names of the columns of each ``features`` array (130 or 25).
    n_features_ : int
        Number of features per frame.

    See Also
    --------
    sklearn_s2au.framing.frame_count : Number of frames of a recording.
    sklearn_s2au.framing.to_frame_grid : The averaging onto the grid.

    Notes
    -----
    Input is the recordings table of ``docs/data_contract.rst``: a DataFrame with the
    speaker column and either ``signal`` (1-D array, or stereo ``(n, 2)``/``(2, n)``) plus
    ``sampling_rate`` (Hz), or ``file`` (any format :func:`audiofile.read` reads, at the
    file's own sampling rate). When both ``signal`` and ``file`` are present, ``signal``
    is used. The output is the frame table: same index, columns ``[speaker_col,
    "features"]``. ``fit`` learns nothing; it checks the parameters and the table.

    **Long recordings.** One openSMILE pass as :meth:`opensmile.Smile.process_signal`
    runs it keeps the whole recording in memory: its audio source and the levels that
    feed the feature set's functionals grow with the input (measured: 269 MB peak RSS for
    1 min of 16 kHz audio, 2.07 GB for 30 min). Above ``segment_seconds`` a recording is
    streamed instead: one openSMILE run of the feature set's own LLD components (its
    configuration files, without the functionals), every data level a ring buffer,
    receives the audio ``segment_seconds`` at a time while it runs, and its frames are
    averaged onto the grid as they come out. openSMILE computes each frame from the
    levels it holds whenever the audio arrives and flushes the end of the input after
    the last audio, so this is one pass over the same samples and every frame is
    identical, bit for bit (tested for block sizes of 1 s and more, ends anywhere in a
    frame, and sustained tones). That includes what no extraction in overlapping
    segments, restarting openSMILE with seconds of context, reproduces (see
    ``docs/user_guide.rst``): the deltas of ComParE_2016's F0 group (F0, voicing,
    jitter, shimmer, HNR), whose normaliser openSMILE accumulates from the start of the
    input and never resets; the last frames, computed in openSMILE's end-of-input flush
    from values that it does not output; and jitter and shimmer, which follow pitch
    periods from the start of a voiced stretch (in a sustained tone, the start of the
    recording). A ``file`` (WAV, FLAC, MP3, OGG) is read span by span, never whole, and
    the frames go straight into the float32 output as they are completed, so what grows
    with the length is the output alone (4 bytes per feature and frame: 47 MB per hour
    of ComParE_2016 at 25 Hz) and, for a ``signal``, the samples given. Measured from a
    16 kHz WAV file (``benchmarks/bench_features.py --long 1 10 30 120``): 376 MB peak
    RSS for two hours of ComParE_2016 streamed, against 1.8 GB for 30 minutes in one
    pass (figures in ``benchmarks/README.md``).

    References
    ----------
    .. [1] L. Stappen, V. Karas, N. Cummins, F. Ringeval, K. Scherer and B. Schuller,
       "From speech to facial activity: towards cross-modal sequence-to-sequence
       attention networks", MMSP 2019.
    .. [2] F. Eyben, M. Wöllmer and B. Schuller, "openSMILE: the Munich versatile and
       fast open-source audio feature extractor", ACM Multimedia 2010.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn_s2au.features import OpenSmileLLD
    >>> t = np.arange(16000) / 16000
    >>> tone = 0.3 * np.sin(2 * np.pi * 150 * t) + 0.1 * np.sin(2 * np.pi * 300 * t)
    >>> X = pd.DataFrame({"speaker": ["s1"], "signal": [tone], "sampling_rate": [16000]})
    >>> frames = OpenSmileLLD().fit_transform(X)
    >>> list(frames.columns), frames["features"].iloc[0].shape
    (['speaker', 'features'], (25, 130))
    >>> OpenSmileLLD("eGeMAPSv02", frame_rate=100).fit(X).get_feature_names_out()[:2]
    array(['Loudness_sma3', 'alphaRatio_sma3'], dtype=object)
    """

    def __init__(self, feature_set="ComParE_2016", frame_rate=25, normalise_peak=True,
                 segment_seconds=60.0, speaker_col="speaker", n_jobs=None, verbose=0):
        self.feature_set = feature_set
        self.frame_rate = frame_rate
        self.normalise_peak = normalise_peak
        self.segment_seconds = segment_seconds
        self.speaker_col = speaker_col
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _check_params(self):
        """Validate the parameters; return the canonical feature set name."""
        feature_set = _resolve_feature_set(self.feature_set)
        if (isinstance(self.frame_rate, bool) or not isinstance(self.frame_rate, numbers.Real)
                or not np.isfinite(self.frame_rate) or self.frame_rate <= 0):
            raise ValueError(f"OpenSmileLLD: frame_rate must be a positive number of frames "
                             f"per second (25 for the label rate, 100 for openSMILE's), got "
                             f"{self.frame_rate!r}.")
        if not isinstance(self.normalise_peak, (bool, np.bool_)):
            raise ValueError(f"OpenSmileLLD: normalise_peak must be True or False, got "
                             f"{self.normalise_peak!r}.")
        seg = self.segment_seconds
        if seg is not None and (isinstance(seg, bool) or not isinstance(seg, numbers.Real)
                                or not np.isfinite(seg) or seg < 1):
            raise ValueError(f"OpenSmileLLD: segment_seconds must be None (one pass) or a "
                             f"number of seconds >= 1, got {seg!r}.")
        if not isinstance(self.speaker_col, str):
            raise ValueError(f"OpenSmileLLD: speaker_col must be a column name (str), got "
                             f"{self.speaker_col!r}.")
        if self.n_jobs is not None and (isinstance(self.n_jobs, bool)
                                        or not isinstance(self.n_jobs, numbers.Integral)
                                        or self.n_jobs == 0):
            raise ValueError(f"OpenSmileLLD: n_jobs must be None or a non-zero integer "
                             f"(-1 for all cores), got {self.n_jobs!r}.")
        if isinstance(self.verbose, bool) or not isinstance(self.verbose, numbers.Integral):
            raise ValueError(f"OpenSmileLLD: verbose must be an integer, got "
                             f"{self.verbose!r}.")
        return feature_set

    def _check_recordings(self, X):
        """Check the recordings table; return one ``(label, file, signal, rate)`` per row."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                f"OpenSmileLLD expects a recordings table: a pandas DataFrame with one row "
                f"per recording, a {self.speaker_col!r} column and either 'file' (audio "
                f"path) or 'signal' plus 'sampling_rate'; got {type(X).__name__}. See "
                f"docs/data_contract.rst.")
        if len(X) == 0:
            raise ValueError("OpenSmileLLD: the recordings table is empty (0 recordings).")
        if self.speaker_col not in X.columns:
            raise ValueError(
                f"OpenSmileLLD: the recordings table has no speaker column "
                f"{self.speaker_col!r} (columns: {list(X.columns)}). Add one, or set "
                f"speaker_col to the column that holds the speaker of each recording.")
        missing = pd.isna(X[self.speaker_col]).to_numpy()
        if missing.any():
            label = X.index[int(np.flatnonzero(missing)[0])]
            raise ValueError(f"OpenSmileLLD: {_recording(label)} has no speaker (missing value "
                             f"in column {self.speaker_col!r}); fill it in.")
        labels = X.index
        if "signal" in X.columns:
            if "sampling_rate" not in X.columns:
                raise ValueError(
                    f"OpenSmileLLD: the recordings table has a 'signal' column but no "
                    f"'sampling_rate' column (columns: {list(X.columns)}); add the sampling "
                    f"rate in Hz of each signal.")
            rates = X["sampling_rate"].to_numpy()
            for label, signal, rate in zip(labels, X["signal"].to_numpy(), rates):
                if signal is None or (np.ndim(signal) == 0 and pd.isna(signal)):
                    raise ValueError(f"OpenSmileLLD: {_recording(label)} has no signal (missing "
                                     f"value in column 'signal'); give its samples.")
                if (isinstance(rate, (bool, np.bool_)) or not isinstance(rate, numbers.Real)
                        or not np.isfinite(rate) or rate <= 0 or rate != int(rate)):
                    raise ValueError(
                        f"OpenSmileLLD: {_recording(label)} has sampling_rate {_show(rate)}; give a "
                        f"positive whole number of samples per second (Hz), e.g. 16000.")
            return [(label, None, signal, int(rate)) for label, signal, rate
                    in zip(labels, X["signal"].to_numpy(), rates)]
        if "file" in X.columns:
            jobs = []
            for label, file in zip(labels, X["file"].to_numpy()):
                if not isinstance(file, (str, os.PathLike)):
                    raise ValueError(f"OpenSmileLLD: {_recording(label)} has file {_show(file)}; give "
                                     f"the path of its audio file.")
                if not os.path.isfile(file):
                    raise FileNotFoundError(
                        f"OpenSmileLLD: the audio file {os.fspath(file)!r} of "
                        f"{_recording(label)} does not exist; fix the path in column 'file' "
                        f"(relative paths are relative to {os.getcwd()!r}).")
                jobs.append((label, os.fspath(file), None, None))
            return jobs
        raise ValueError(
            f"OpenSmileLLD: the recordings table has neither a 'file' column (audio paths) "
            f"nor 'signal' and 'sampling_rate' columns (columns: {list(X.columns)}); add "
            f"one of them. See docs/data_contract.rst.")

    def fit(self, X, y=None):
        """Check the parameters and the recordings table; nothing is learned.

        Parameters
        ----------
        X : pandas.DataFrame
            The recordings table.
        y : None
            Ignored.

        Returns
        -------
        self : OpenSmileLLD
        """
        feature_set = self._check_params()
        self._check_recordings(X)
        self.feature_names_ = _feature_names(feature_set)
        self.n_features_ = len(self.feature_names_)
        return self

    def transform(self, X):
        """Extract the LLDs of every recording onto the frame grid.

        Parameters
        ----------
        X : pandas.DataFrame
            The recordings table.

        Returns
        -------
        frames : pandas.DataFrame
            The frame table: index of ``X``, columns ``[speaker_col, "features"]``, each
            ``features`` a ``float32`` array ``(n_frames, n_features)`` with
            ``n_frames = frame_count(duration, frame_rate)``.
        """
        feature_set = self._check_params()
        jobs = self._check_recordings(X)
        settings = (feature_set, float(self.frame_rate), bool(self.normalise_peak),
                    None if self.segment_seconds is None else float(self.segment_seconds))
        n_workers = min(effective_n_jobs(self.n_jobs), len(jobs))
        features = [None] * len(jobs)
        with tqdm(total=len(jobs), disable=not self.verbose, desc="openSMILE LLDs",
                  unit="recording") as progress:
            if n_workers <= 1:
                for position, job in enumerate(jobs):
                    features[position] = _extract_one(feature_set, *job, *settings[1:])
                    progress.update()
            else:
                # Deal recordings out round-robin so every chunk gets a similar mix of
                # long and short ones; each chunk is one task with one extractor.
                n_chunks = min(len(jobs), _CHUNKS_PER_WORKER * n_workers)
                chunks = [np.arange(c, len(jobs), n_chunks) for c in range(n_chunks)]
                tasks = (delayed(_extract_chunk)(chunk, [jobs[p] for p in chunk], *settings)
                         for chunk in chunks)
                parallel = Parallel(n_jobs=self.n_jobs, prefer="processes",
                                    return_as="generator_unordered")
                for positions, arrays in parallel(tasks):
                    for position, arr in zip(positions, arrays):
                        features[position] = arr
                    progress.update(len(positions))
        _logger.info("OpenSmileLLD: extracted %s LLDs of %d recordings (%d frames).",
                     feature_set, len(jobs), sum(len(f) for f in features))
        column = object_array(features)
        return pd.DataFrame({self.speaker_col: X[self.speaker_col],
                             FEATURES_COL: pd.Series(column, index=X.index, dtype=object)},
                            index=X.index)

    def get_feature_names_out(self, input_features=None):
        """Names of the columns of each ``features`` array.

        Parameters
        ----------
        input_features : None
            Ignored: the names depend only on ``feature_set``.

        Returns
        -------
        feature_names_out : ndarray of str
            For ComParE_2016 the 65 LLD names then the 65 delta names (``*_de``); for
            eGeMAPSv02 the 25 LLD names.
        """
        return _feature_names(self._check_params()).copy()

    def __sklearn_tags__(self):
        # input: a recordings table (DataFrame of audio files or signals)
        tags = sequence_input_tags(super().__sklearn_tags__())
        tags.target_tags.required = False
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = []
        return tags
