"""Kivy user interface. Importing this package sets a phone-like window size on desktops;
it must happen before Kivy creates its window (the first import of a popup or the window)."""

import os
import sys

os.environ.setdefault("KIVY_NO_ARGS", "1")
# Kivy's default log mode takes over Python's root logger and replaces sys.stderr; MIXED keeps
# Kivy's messages on its own logger and leaves the rest of the process (CLI, tests) alone.
os.environ.setdefault("KIVY_LOG_MODE", "MIXED")
WINDOW_SIZE = (480, 860)


def _configure_window() -> None:
    if "kivy.core.window" in sys.modules:  # too late: the window exists
        return
    from kivy.config import Config

    Config.set("graphics", "width", str(WINDOW_SIZE[0]))
    Config.set("graphics", "height", str(WINDOW_SIZE[1]))
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "0")


if "ANDROID_ARGUMENT" not in os.environ:
    _configure_window()
