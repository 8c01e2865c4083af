"""keras.preprocessing.image: images to and from files and arrays."""
from engine.utils.image_utils import array_to_img, img_to_array, load_img, save_img, smart_resize
