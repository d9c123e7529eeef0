"""`tpcloud` and `python -m tpcloud`: the command line, started as cheaply as Python allows.

Start-up makes tens of thousands of objects (typer's, asyncio's, tpcloud's own modules) that live
as long as the process; the garbage collector, run again and again as they pile up, finds nothing
to free among them (~7 ms of every command). So collection waits until the command's work begins
(``tpcloud.cli.common.boundary``), which first sets everything made so far aside for good
(``gc.freeze``): the collections a long `watch` needs then look only at what it makes itself.
"""


def main() -> None:
    import gc

    gc.disable()
    from tpcloud.cli import main as run_command_line

    run_command_line()


if __name__ == "__main__":
    main()
