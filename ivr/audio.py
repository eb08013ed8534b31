"""Audio shaping with pydub: telephone-ready prompts (8 kHz, 16-bit, mono)."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # pydub warns at import when ffmpeg is absent; WAV work here never needs ffmpeg.
    warnings.simplefilter("ignore", RuntimeWarning)
    from pydub import AudioSegment
    from pydub.effects import normalize
    from pydub.silence import detect_leading_silence

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
