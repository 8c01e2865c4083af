"""Keras 3's preprocessing layers: lookups, text, hashing, discretization, normalization, images."""
from engine.layers.preprocessing.normalization import Normalization
from engine.layers.preprocessing.image_preprocessing import Rescaling, Resizing, CenterCrop
from engine.layers.preprocessing.image_augmentation import (RandomFlip, RandomRotation, RandomZoom,
                                                            RandomTranslation, RandomContrast, RandomBrightness,
                                                            RandomCrop)
