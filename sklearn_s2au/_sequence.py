"""`SequenceBatch`: recordings cut into padded chunks, and the way back."""

from dataclasses import dataclass

import numpy as np

from ._utils import object_array
from ._validation import check_labels


@dataclass(eq=False)
class SequenceBatch:
    """Padded, chunked recordings as the sequence classifiers consume them.

    A recording of ``n`` frames becomes ``ceil(n / max_len)`` consecutive, non-overlapping
    chunks; the last one is zero-padded to ``max_len``. `unpad` stitches per-chunk outputs
    back into one array per recording, so every real frame gets exactly one value.
    Built by :class:`~sklearn_s2au.preprocessing.SequencePadder`.

    Attributes
    ----------
    X : ndarray of shape (n_chunks, max_len, n_features), float32
        Features, zero on padded steps.
    lengths : ndarray of shape (n_chunks,), int64
        Real frames in each chunk (at least 1).
    recording : ndarray of shape (n_chunks,), int64
        Position (0-based, input order) of the recording each chunk comes from.
    offset : ndarray of shape (n_chunks,), int64
        First frame of each chunk within its recording.
    speaker : ndarray of shape (n_chunks,), object
        Speaker of each chunk (None when the frame table had no speaker column).
    n_frames : ndarray of shape (n_recordings,), int64
        Real frames of each recording.
    index : pandas.Index or None
        Index labels of the recordings, used to name them in errors.
    """

    X: np.ndarray
    lengths: np.ndarray
    recording: np.ndarray
    offset: np.ndarray
    speaker: np.ndarray
    n_frames: np.ndarray
    index: object = None

    @classmethod
    def from_features(cls, features, speakers, max_len, index=None):
        """Cut per-recording ``(n_frames_i, n_features)`` arrays into padded chunks."""
        n_frames = np.array([len(f) for f in features], dtype=np.int64)
        n_chunks = -(-n_frames // max_len)
        recording = np.repeat(np.arange(len(features), dtype=np.int64), n_chunks)
        starts = np.concatenate([np.arange(c, dtype=np.int64) * max_len for c in n_chunks])
        lengths = np.minimum(n_frames[recording] - starts, max_len)
        n_features = features[0].shape[1]
        X = np.zeros((len(recording), max_len, n_features), dtype=np.float32)
        chunk = 0
        for f, c in zip(features, n_chunks):
            # (n_frames,) -> (c, max_len) by padding the tail once per recording
            padded = np.zeros((c * max_len, n_features), dtype=np.float32)
            padded[: len(f)] = f
            X[chunk: chunk + c] = padded.reshape(c, max_len, n_features)
            chunk += c
        speaker = (np.asarray(speakers, dtype=object)[recording] if speakers is not None
                   else np.full(len(recording), None, dtype=object))
        return cls(X=X, lengths=lengths, recording=recording, offset=starts,
                   speaker=speaker, n_frames=n_frames, index=index)

    @property
    def max_len(self):
        return self.X.shape[1]

    @property
    def n_features(self):
        return self.X.shape[2]

    @property
    def n_chunks(self):
        return self.X.shape[0]

    def __len__(self):
        return len(self.n_frames)

    def mask(self):
        """Boolean ``(n_chunks, max_len)``: True on real frames, False on padding."""
        return np.arange(self.max_len)[None, :] < self.lengths[:, None]

    def recording_speakers(self):
        """Speaker of each recording, ``(n_recordings,)``."""
        first = np.searchsorted(self.recording, np.arange(len(self)))
        return self.speaker[first]

    def _flat_positions(self):
        # Position of every real frame of the batch in the (n_chunks * max_len) layout,
        # recording by recording, frame by frame: the one map between both layouts.
        mask = self.mask()
        return np.flatnonzero(mask.ravel())

    def pad_labels(self, y, binary=True):
        """Per-recording labels to ``float32`` ``(n_chunks, max_len[, n_targets])``.

        Checks that each recording has exactly as many labels as frames and that labels
        are binary (or, with ``binary=False``, finite real values such as intensities);
        padded steps are 0 (and must be masked out by the consumer).
        """
        labels = check_labels(y, self.n_frames, index=self.index, step="SequenceBatch",
                              binary=binary)
        flat = np.concatenate(labels, axis=0)
        tail = flat.shape[1:]
        out = np.zeros((self.n_chunks * self.max_len,) + tail, dtype=np.float32)
        out[self._flat_positions()] = flat
        return out.reshape((self.n_chunks, self.max_len) + tail)

    def unpad(self, values):
        """Per-chunk outputs ``(n_chunks, max_len, ...)`` to a list of per-recording arrays.

        Returns an object ndarray of ``n_recordings`` arrays ``(n_frames_i, ...)`` in
        input order: the chunks of each recording are concatenated and padding dropped.
        """
        values = np.asarray(values)
        if values.shape[:2] != (self.n_chunks, self.max_len):
            raise ValueError(f"expected outputs of shape ({self.n_chunks}, {self.max_len}, "
                             f"...), got {values.shape}.")
        flat = values.reshape((-1,) + values.shape[2:])[self._flat_positions()]
        bounds = np.cumsum(self.n_frames)[:-1]
        return object_array(np.ascontiguousarray(a) for a in np.split(flat, bounds))

    def select(self, recordings):
        """A new batch holding only the given recordings (positions), renumbered."""
        recordings = np.asarray(recordings)
        if recordings.dtype == bool:
            recordings = np.flatnonzero(recordings)
        recordings = recordings.astype(np.int64)
        new_pos = np.full(len(self), -1, dtype=np.int64)
        new_pos[recordings] = np.arange(len(recordings))
        # keep chunks grouped by recording in the new order
        order = np.concatenate([np.flatnonzero(self.recording == r) for r in recordings]) \
            if len(recordings) else np.array([], dtype=np.int64)
        index = self.index[recordings] if self.index is not None else None
        return SequenceBatch(X=self.X[order], lengths=self.lengths[order],
                             recording=new_pos[self.recording[order]],
                             offset=self.offset[order], speaker=self.speaker[order],
                             n_frames=self.n_frames[recordings], index=index)

    def __getitem__(self, recordings):
        return self.select(np.arange(len(self))[recordings])
