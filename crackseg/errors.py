"""User-facing errors: raised at the boundary (files, CLI, API), printed as one line by the CLI."""


class CrackSegError(Exception):
    """A problem with the user's input that they can fix; the message names the file or argument."""
