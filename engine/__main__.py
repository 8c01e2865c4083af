"""`python -m engine`: a tour of the seed chapter's models (see engine/tour.py)."""
from engine.tour import run

if __name__ == "__main__":
    run()
