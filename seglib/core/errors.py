"""Errors a user can fix. The CLI prints them as one line, without a traceback."""


class SeglibError(Exception):
    """A problem with the user's input or setup; the message names the file and the fix."""


class ImageReadError(SeglibError):
    """An image file that cannot be decoded."""
