"""Seeded augmentation callables, in the order a training utterance meets them: the acoustics of the room and
the speaker (speed, reverberation, noise), the channel it is recorded and sent through (a microphone's colour,
a trim to the words, clipping, a telephone line, a lossy codec), and the features (another
speaker's formants, SpecAugment).

Each callable takes the input and an optional `numpy.random.Generator`; without one it draws from its own
generator, seeded at construction, so a run with the same seed repeats exactly.
"""

from asr.augment.acoustic import (
    AddNoise,
    Reverb,
    SpeedPerturb,
    coloured_noise,
    first_arrival,
    mix_at_snr,
    power,
    read_audio_list,
    snr_db,
    speech_power,
)
from asr.augment.channel import Clip, Codec, Equalize, Telephone, Trim, alaw_round_trip, mulaw_round_trip
from asr.augment.spec import SpecAugment, VocalTractWarp

__all__ = [
    "AddNoise", "Reverb", "SpeedPerturb", "Equalize", "Trim", "Clip", "Codec", "Telephone",
    "SpecAugment", "VocalTractWarp",
    "coloured_noise", "first_arrival", "mix_at_snr", "power", "read_audio_list", "snr_db", "speech_power",
    "alaw_round_trip", "mulaw_round_trip",
]
