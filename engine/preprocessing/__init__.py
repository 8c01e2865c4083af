"""keras.preprocessing's paths: `preprocessing.sequence.pad_sequences` and the dataset utilities."""
from engine.preprocessing import sequence
from engine.utils.dataset_utils import image_dataset_from_directory, text_dataset_from_directory
from engine.utils.timeseries_dataset import timeseries_dataset_from_array
