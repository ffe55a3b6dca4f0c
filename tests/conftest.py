import os

# Tests never reach a hub; the real hub code paths are exercised on local files in the hub's format.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_MININTERVAL", "5")
