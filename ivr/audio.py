"""Audio shaping with pydub: telephone-ready prompts (8 kHz, 16-bit, mono)."""

from __future__ import annotations

import warnings
from pathlib import Path

with warnings.catch_warnings():
    # pydub warns at import when ffmpeg is absent; WAV work here never needs ffmpeg.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.effects import normalize
    from pydub.silence import detect_leading_silence, detect_nonsilent
    from pydub.utils import audioop

TELEPHONE_RATE = 8000
SAMPLE_WIDTH = 2
LEAD_IN_MS = 150
TAIL_MS = 250
SILENCE_THRESHOLD_DBFS = -45.0
HEADROOM_DB = 3.0


def trim_silence(
    segment: AudioSegment, threshold_dbfs: float = SILENCE_THRESHOLD_DBFS
) -> AudioSegment:
    """Cut leading and trailing silence."""
    start = detect_leading_silence(segment, silence_threshold=threshold_dbfs)
    end = detect_leading_silence(segment.reverse(), silence_threshold=threshold_dbfs)
    trimmed = segment[start : len(segment) - end]
    return trimmed if len(trimmed) > 0 else segment


def to_telephone(segment: AudioSegment) -> AudioSegment:
    """Trim, normalise to a fixed headroom, pad with short silences, and resample to 8 kHz mono."""
    shaped = normalize(trim_silence(segment), headroom=HEADROOM_DB)
    padded = (
        AudioSegment.silent(duration=LEAD_IN_MS, frame_rate=shaped.frame_rate)
        + shaped
        + AudioSegment.silent(duration=TAIL_MS, frame_rate=shaped.frame_rate)
    )
    return padded.set_channels(1).set_sample_width(SAMPLE_WIDTH).set_frame_rate(TELEPHONE_RATE)


def _pcm_segment(pcm: bytes, rate: int) -> AudioSegment:
    if len(pcm) % SAMPLE_WIDTH:
        raise ValueError("16-bit PCM must have an even number of bytes")
    return AudioSegment(data=pcm, sample_width=SAMPLE_WIDTH, frame_rate=rate, channels=1)


def to_model_rate(pcm8k: bytes, rate: int) -> bytes:
    """Resample a whole buffer of 8 kHz 16-bit mono call audio to a recogniser's rate."""
    if rate == TELEPHONE_RATE:
        return pcm8k
    return _pcm_segment(pcm8k, TELEPHONE_RATE).set_frame_rate(rate).raw_data


class StreamResampler:
    """Resample 16-bit mono PCM frame by frame, carrying filter state across frames."""

    def __init__(self, rate_in: int = TELEPHONE_RATE, rate_out: int = 16000) -> None:
        self.rate_in = rate_in
        self.rate_out = rate_out
        self._state: object = None
        self._odd = b""

    def convert(self, pcm: bytes) -> bytes:
        """Return the resampled audio of ``pcm``; an odd trailing byte waits for the next frame."""
        data = self._odd + pcm
        cut = len(data) - len(data) % SAMPLE_WIDTH
        data, self._odd = data[:cut], data[cut:]
        if self.rate_in == self.rate_out or not data:
            return data
        out, self._state = audioop.ratecv(
            data, SAMPLE_WIDTH, 1, self.rate_in, self.rate_out, self._state
        )
        return out


def wav_to_pcm(path: str | Path, rate: int = TELEPHONE_RATE) -> bytes:
    """Read a WAV file (any rate, width, channels) as 16-bit mono PCM at ``rate``."""
    segment = AudioSegment.from_wav(str(path))
    return segment.set_channels(1).set_sample_width(SAMPLE_WIDTH).set_frame_rate(rate).raw_data


def pcm_to_wav(pcm: bytes, path: str | Path, rate: int = TELEPHONE_RATE) -> Path:
    """Write 16-bit mono PCM to a WAV file and return its path."""
    out = Path(path)
    _pcm_segment(pcm, rate).export(str(out), format="wav")
    return out


def voiced_seconds(path: str | Path, threshold_dbfs: float = SILENCE_THRESHOLD_DBFS) -> float:
    """Seconds of a WAV recording louder than ``threshold_dbfs`` (a line's hiss is not a
    voice); 0 for a file that is not a readable WAV."""
    try:
        segment = AudioSegment.from_wav(str(path))
    except (OSError, EOFError, ValueError, IndexError):
        return 0.0
    spans = detect_nonsilent(segment, min_silence_len=200, silence_thresh=threshold_dbfs,
                             seek_step=10)
    return sum(end - start for start, end in spans) / 1000.0
