"""Errors caused by what a user gave us (a bad file, an out-of-range option): the CLI prints one line."""


class UserInputError(ValueError):
    """A problem with the user's input, reported as one clear line and exit status 2."""
