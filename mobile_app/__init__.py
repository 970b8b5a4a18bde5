"""CoGMA's phone app: record an infant, estimate its pose on the phone, score it on the phone.

Everything runs on the device. Nothing leaves it unless the parents consent to share, and then
only keypoints and the corrected age in weeks — never video, never a birth date.

Layout: ``ui/`` (Kivy screens, layout in ``.kv``), ``pose/`` (pose backends and the pose model
file), ``scoring.py`` (bundle scorers), ``pipeline.py`` (video/recording -> result, no UI),
``store.py`` (SQLite), ``upload.py`` (consent-gated upload client with an offline queue).
"""
