"""``python -m wizchat_management.emulator``: the same command as ``wizsync emulator``."""

from .cli import emulator_command

if __name__ == "__main__":
    emulator_command(prog_name="python -m wizchat_management.emulator")
