"""keras.preprocessing's paths: `preprocessing.sequence.pad_sequences`, `preprocessing.image.load_img`, ...
and the dataset utilities."""
from engine.preprocessing import image, sequence
from engine.utils.dataset_utils import image_dataset_from_directory, text_dataset_from_directory
from engine.utils.timeseries_dataset import timeseries_dataset_from_array
