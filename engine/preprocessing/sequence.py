"""keras.preprocessing.sequence: pad_sequences."""
from engine.utils.sequence_utils import pad_sequences
