"""Keras 3's preprocessing layers: lookups, text, hashing, discretization, normalization, images."""
from engine.layers.preprocessing.normalization import Normalization
from engine.layers.preprocessing.image_preprocessing import Rescaling, Resizing, CenterCrop
from engine.layers.preprocessing.image_augmentation import (RandomFlip, RandomRotation, RandomZoom,
                                                            RandomTranslation, RandomContrast, RandomBrightness,
                                                            RandomCrop)
from engine.layers.preprocessing.category_encoding import CategoryEncoding
from engine.layers.preprocessing.hashing import Hashing
from engine.layers.preprocessing.index_lookup import StringLookup, IntegerLookup
from engine.layers.preprocessing.text_vectorization import TextVectorization
from engine.layers.preprocessing.discretization import Discretization
