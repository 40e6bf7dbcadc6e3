"""asr: a compact, hackable speech recogniser (log-mel -> BiLSTM -> CTC)."""

__version__ = "0.1.0"
