"""Driving `tpcloud` on a pseudo-terminal the way a person does: read a prompt, then type.

Typing too early loses the keys (getpass flushes the terminal's input as it turns echo off), so
each answer waits for its prompt on the last line, for echo to be off when it is hidden, and for
whatever else the test says must be true first. Every wait has a deadline and a child that does
not finish is killed, so a broken prompt fails the test instead of hanging it.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import termios
import time
from dataclasses import dataclass
from typing import Callable

import pytest


@dataclass
class Answer:
    prompt: bytes
    text: Callable[[], str]
    hidden: bool = False
    ready: Callable[[], bool] = lambda: True


def run_on_terminal(args: list[str], env: dict, answers: list[Answer], *, deadline: float = 30) -> tuple[int, bytes]:
    """Run `python -m tpcloud ARGS` on a terminal, typing ANSWERS; its exit code and transcript."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: tpcloud with a terminal as stdin
        os.execve(sys.executable, [sys.executable, "-m", "tpcloud", *args], env)
    transcript = b""
    pending = list(answers)
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            transcript += chunk
        if pending and pending[0].prompt in transcript.split(b"\n")[-1] and _may_type(fd, pending[0]):
            os.write(fd, pending.pop(0).text().encode() + b"\n")
    for _ in range(50):  # never wait on a child stuck at a prompt: give it a moment, then kill it
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(fd)
        pytest.fail(f"tpcloud {' '.join(args)} did not finish on a terminal; it printed {transcript!r}")
    os.close(fd)
    return os.waitstatus_to_exitcode(status), transcript


def _may_type(fd: int, answer: Answer) -> bool:
    echo_off = not termios.tcgetattr(fd)[3] & termios.ECHO
    return (echo_off or not answer.hidden) and answer.ready()
